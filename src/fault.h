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
 *
 * Security: none; a point does nothing unless enabled by the process's
 * own environment at start.
 */
#pragma once

#include <signal.h>

#if FIU_ENABLE
#include <fiu.h>
#define FAULT_KILL(name) fiu_do_on(name, raise(SIGKILL))
static inline void fault_init(void) {
        (void) fiu_init(0);
}
#else
#define FAULT_KILL(name) ((void) 0)
static inline void fault_init(void) {
}
#endif
