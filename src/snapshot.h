/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h — one complete, validated configuration: deliveryd.conf with
 * its drop-ins and overrides, plus the catalog, zones, nlu rules and reply
 * templates it names.  A reload builds a new snapshot and swaps it in only
 * if it is entirely valid; work already in flight keeps a reference to the
 * snapshot it started with.
 *
 * Security: see conf.h, catalog.h and template.h.
 */
#pragma once

#include "catalog.h"
#include "conf.h"
#include "nlu-rules.h"
#include "template.h"

typedef struct Snapshot {
        unsigned n_ref;
        Config *config;
        Catalog *catalog;
        NluRules *nlu_rules; /* always loaded: the fallback of every nlu backend */
        Templates *templates; /* the replies, {store} set to store.name */
} Snapshot;

/* Load everything (config, catalog and zones, nlu rules compiled with
 * the catalog's names, reply templates); on any problem returns -EINVAL
 * with every problem in diags (file:line: message), -ENOMEM. */
int snapshot_load(const char *path, char *const *overrides, Snapshot **ret, Diags *diags);

Snapshot *snapshot_ref(Snapshot *s);
Snapshot *snapshot_unref(Snapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Snapshot *, snapshot_unref);
