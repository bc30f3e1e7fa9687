/* SPDX-License-Identifier: MIT */
/*
 * manager.h — the daemon itself: one sd-event loop that owns the store,
 * the current configuration snapshot, the HTTP, LMTP and control
 * listeners, and the daemon's life under systemd (READY, STATUS,
 * WATCHDOG, RELOADING on SIGHUP, STOPPING and drain on SIGTERM/SIGINT).
 *
 * Security: owns every listener; see http.h, control.h.
 */
#pragma once

#include "macro.h"
#include "snapshot.h"

typedef struct Manager Manager;

/* Take ownership of snapshot; path and overrides are what a reload
 * re-reads.  Returns 0 or -errno. */
int manager_new(const char *config_path, char *const *overrides, Snapshot *snapshot, bool verbose, Manager **ret);

/* Open the store, bind or take over listeners, tell systemd READY=1.
 * Returns 0 or -errno (already logged). */
int manager_start(Manager *m);

/* Run the loop until stopped; returns the process exit code. */
int manager_run(Manager *m);

Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
