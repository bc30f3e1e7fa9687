/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c — configuration + catalog + nlu rules + templates, loaded and
 * validated together.
 *
 * Security: see snapshot.h.
 */
#include "snapshot.h"

#include <string.h>

#include "alloc.h"

Snapshot *snapshot_ref(Snapshot *s) {
        if (s)
                s->n_ref++;
        return s;
}

Snapshot *snapshot_unref(Snapshot *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        conf_unref(s->config);
        nlu_rules_free(s->nlu_rules);
        templates_free(s->templates);
        catalog_free(s->catalog);
        free(s);
        return NULL;
}

/* Index of the table row for section.key, to find where a value was set. */
static const ConfSource *source_of(const Config *c, const char *section, const char *key) {
        size_t n;
        const ConfKey *t = conf_table(&n);

        for (size_t i = 0; i < n; i++)
                if (streq(t[i].section, section) && streq(t[i].key, key))
                        return &c->sources[i];
        return NULL;
}

/* A missing catalog, zones or rules file or templates directory is the config's problem: point
 * at the line that names it (or at the main file when the default applies). */
static bool check_readable(const Config *c, const char *section, const char *key, const char *path, Diags *diags) {
        const ConfSource *src = source_of(c, section, key);

        if (access(path, R_OK) == 0)
                return true;
        diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0, "%s.%s: cannot read '%s': %s",
                  section, key, path, strerror(errno));
        return false;
}

int snapshot_load(const char *path, char *const *overrides, Snapshot **ret, Diags *diags) {
        _cleanup_(snapshot_unrefp) Snapshot *s = NULL;
        int r;

        s = mem_new(Snapshot, 1);
        if (!s)
                return -ENOMEM;
        s->n_ref = 1;

        r = conf_load(path, overrides, 0, &s->config, diags);
        if (r < 0)
                return r;

        bool ok = check_readable(s->config, "store", "catalog", s->config->store_catalog, diags);
        ok = check_readable(s->config, "store", "zones", s->config->store_zones, diags) && ok;
        if (ok) {
                r = catalog_load(s->config->store_catalog, s->config->store_zones, &s->catalog, diags);
                if (r == -ENOMEM)
                        return r;
                ok = r >= 0;
        }

        /* The rules are read even when the catalog is bad, so that one
         * --check-config reports the problems of both; without a catalog
         * they are only checked. */
        if (check_readable(s->config, "nlu", "rules", s->config->nlu_rules, diags)) {
                _cleanup_(nlu_rules_freep) NluRules *rules = NULL;
                r = nlu_rules_load(s->config->nlu_rules, s->catalog, &rules, diags);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && ok)
                        s->nlu_rules = TAKE_PTR(rules);
                ok = ok && r >= 0;
        } else
                ok = false;

        /* Templates too are reported whatever else is wrong. */
        if (check_readable(s->config, "store", "templates", s->config->store_templates, diags)) {
                r = templates_load(s->config->store_templates, &s->templates, diags);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0)
                        r = templates_set_store(s->templates, s->config->store_name);
                if (r == -ENOMEM)
                        return r;
                ok = ok && r >= 0;
        } else
                ok = false;
        if (!ok)
                return -EINVAL;

        *ret = TAKE_PTR(s);
        return 0;
}
