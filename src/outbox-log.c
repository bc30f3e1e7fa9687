/* SPDX-License-Identifier: MIT */
/*
 * outbox-log.c — the "log" transport: always OK, at once.
 *
 * Security: see outbox-log.h.
 */
#include "outbox-log.h"

#include <string.h>

#include "log.h"

static int log_send(void *userdata _unused_, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        char id[32];

        log_event("outbox_sent id=%lld channel=%s to=%s bytes=%zu%s", (long long) d->id,
                  outbox_channel_to_string(d->channel), d->to, strlen(d->body),
                  d->possible_duplicate ? " possible_duplicate=1" : "");
        snprintf(id, sizeof id, "log-%lld", (long long) d->id);
        done(done_data, OUTBOX_RESULT_OK, id, NULL);
        return 0;
}

const OutboxTransport outbox_transport_log = {
        .name = "log",
        .send = log_send,
};
