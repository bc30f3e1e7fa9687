/* SPDX-License-Identifier: MIT */
/*
 * fault.h — named failure points for the crash and fault tests, through
 * libfiu when it is there at build time ("configure" defines FIU_ENABLE);
 * otherwise they compile to nothing.  A test enables one by name with
 * fiu-run -c "enable name=deliveryd/…".
 *
 * Points:
 *   deliveryd/inbox/after-commit  die by SIGKILL right after an inbox commit,
 *                                 before anyone is told: the window between
 *                                 commit and acknowledgement.
 *   deliveryd/mail-parser/start   the mail parser process exits (status 70)
 *                                 as soon as it starts, before it reads a
 *                                 request: a parser that can never run.
 *   deliveryd/mail-parser/hang    the mail parser process, given a request,
 *                                 waits for a signal instead of parsing it:
 *                                 a message that takes forever.
 *   deliveryd/store/before-sync   the store's sync thread waits, before
 *                                 each fdatasync() of the log, for as long
 *                                 as the point is enabled: a disk that has
 *                                 not confirmed yet (fiu-ctrl enables and
 *                                 disables it while the daemon runs).
 *   The mail parser process keeps libfiu's variables (see mail-parser.c),
 *   so a point enabled with fiu-run holds in every parser process, and
 *   fiu-ctrl reaches one parser process by its pid.
 *
 * Security: none; a point does nothing unless enabled by the process's
 * own environment at start, or through the control fifo that fiu-run's
 * environment asks for.
 */
#pragma once

#include <signal.h>
#include <unistd.h>

#if FIU_ENABLE
#include <fiu.h>
#define FAULT_KILL(name) fiu_do_on(name, raise(SIGKILL))
#define FAULT_EXIT(name, status) fiu_do_on(name, _exit(status))
#define FAULT_HANG(name) fiu_do_on(name, for (;;) pause())
#define FAULT_WAIT(name)                                                                                               \
        do {                                                                                                           \
                while (fiu_fail(name))                                                                                 \
                        usleep(10000);                                                                                 \
        } while (0)
static inline void fault_init(void) {
        (void) fiu_init(0);
}
#else
#define FAULT_KILL(name) ((void) 0)
#define FAULT_EXIT(name, status) ((void) 0)
#define FAULT_HANG(name) ((void) 0)
#define FAULT_WAIT(name) ((void) 0)
static inline void fault_init(void) {
}
#endif
