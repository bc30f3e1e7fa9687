/* SPDX-License-Identifier: MIT */
/*
 * asl-run.h — run an ASL definition to its end offline, with scripted
 * tasks and virtual time ("deliveryctl asl run"): a driver of asl.h that
 * answers every task from a script instead of calling Lambda.  Pure: no
 * I/O, no clock.
 *
 * The script maps a function name (FunctionName of lambda:invoke, or the
 * name in a Lambda ARN) to the list of what its successive calls do:
 *   {"return": JSON} | {"throw": {"error": "Name", "cause": "text"}} |
 *   {"no_callback": true}, each with an optional "delay_ms": N;
 * the last entry repeats when the list runs out.  For .waitForTaskToken,
 * return/throw are the callback's SendTaskSuccess/SendTaskFailure.
 *
 * Security: the definition, input and script are the admin's files;
 * they are validated here and the run is bounded by max_transitions.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "asl.h"

/* Where virtual time starts: 2026-01-01T00:00:00Z. */
#define ASL_RUN_START_USEC (UINT64_C(1767225600) * USEC_PER_SEC)

/* Check a tasks script (see above).  0, or -EINVAL with *ret_error
 * (caller frees); -ENOMEM. */
int asl_script_check(json_t *tasks, char **ret_error);

/* Run def on input (NULL: {}) with the tasks script (NULL: none; a task
 * whose function the script does not name fails with
 * Lambda.ResourceNotFoundException) until the execution ends.  *ret is a
 * new object {"status": "SUCCEEDED", "output": …} or {"status": "FAILED"
 * | "TIMED_OUT", "error": …, "cause": …|null}.  0; -EINVAL with *ret_error
 * for a bad script; -ENOMEM. */
int asl_run_scripted(AslDefinition *def, json_t *input, json_t *tasks, const AslOptions *opts, json_t **ret,
                     char **ret_error);
