/* SPDX-License-Identifier: MIT */
/*
 * outbox-log.h — the "log" transport of the outbox, for SMS and e-mail:
 * a message is "sent" by writing one line to the journal,
 * "event=outbox_sent id=N channel=sms to=… bytes=…".  The local mode's
 * default, and what the tests read.
 *
 * Security: the body is customer data and never logged; only the
 * recipient and the size are.
 */
#pragma once

#include "outbox.h"

extern const OutboxTransport outbox_transport_log;
