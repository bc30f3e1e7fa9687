/* SPDX-License-Identifier: MIT */
/*
 * customer.h — who a customer is: an E.164 phone number for SMS, a
 * lower-cased e-mail address for mail.  Every path into the inbox uses
 * these so that one person is one customer however the message came in.
 *
 * Security: validates untrusted addresses (SNS payloads, mail headers,
 * operator input); nothing else is accepted as a customer id.
 */
#pragma once

#include <stdbool.h>

/* "+5511987654321": '+', a non-zero digit, 7 to 15 digits in all (ITU-T E.164). */
bool customer_phone_valid(const char *s);

/* Lower-case copy of an addr-spec "local@domain" with no spaces, angle
 * brackets or control characters, at most 254 bytes (RFC 5321 4.5.3.1.3).
 * Returns 0 and a new string, -EINVAL, -ENOMEM. */
int customer_email_normalize(const char *s, char **ret);
