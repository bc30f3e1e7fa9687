/* SPDX-License-Identifier: MIT */
/*
 * engine-local.h — engine.backend = local: the order workflow run by the
 * ASL interpreter (asl.h) inside the daemon, durably.  Each execution is a
 * row of the executions table (migration 8) holding the interpreter's
 * state as JSON; every transition — a task's result applied and the
 * interpreter stepped, together with the effects of the in-process tasks it
 * then runs and the messages they queue — is one SQLite transaction.
 * Timers (Wait, retry delays, task timeouts) come from each row's
 * next_deadline and are rebuilt from the table at start.
 *
 * Also here, because they need the daemon's outbox, templates and task
 * tokens: the notify, track, eta and payment_received tasks.  The others
 * are tasks.h's.
 *
 * Security: see engine.h; executions are restored only against the
 * definition they fit (asl_execution_from_json checks them).
 */
#pragma once

#include "engine.h"

extern const EngineOps engine_local_ops;

/* The local tasks' names, NULL-terminated (static): notify, track, eta,
 * payment_received. */
const char *const *engine_local_task_names(void);
