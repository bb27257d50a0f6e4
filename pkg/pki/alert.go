package pki

import (
	"crypto/tls"
	"strings"
)

// alertNames are the TLS alert names of RFC 8446 (section 6) and, for the
// codes it retired, RFC 5246, by code.
var alertNames = map[uint8]string{
	0:   "close_notify",
	10:  "unexpected_message",
	20:  "bad_record_mac",
	21:  "decryption_failed",
	22:  "record_overflow",
	30:  "decompression_failure",
	40:  "handshake_failure",
	41:  "no_certificate",
	42:  "bad_certificate",
	43:  "unsupported_certificate",
	44:  "certificate_revoked",
	45:  "certificate_expired",
	46:  "certificate_unknown",
	47:  "illegal_parameter",
	48:  "unknown_ca",
	49:  "access_denied",
	50:  "decode_error",
	51:  "decrypt_error",
	60:  "export_restriction",
	70:  "protocol_version",
	71:  "insufficient_security",
	80:  "internal_error",
	86:  "inappropriate_fallback",
	90:  "user_canceled",
	100: "no_renegotiation",
	109: "missing_extension",
	110: "unsupported_extension",
	111: "certificate_unobtainable",
	112: "unrecognized_name",
	113: "bad_certificate_status_response",
	114: "bad_certificate_hash_value",
	115: "unknown_psk_identity",
	116: "certificate_required",
	120: "no_application_protocol",
	121: "ech_required",
}

// goAlerts maps crypto/tls's wording of an alert ("unknown certificate
// authority") to its code, and aliases maps every accepted spelling of an
// alert name (RFC names, and crypto/tls's wording with underscores, such as
// unknown_certificate_authority) to the RFC name.
var goAlerts, aliases = func() (map[string]uint8, map[string]string) {
	byText := map[string]uint8{}
	alias := map[string]string{}
	for code, name := range alertNames {
		alias[name] = name
		text := strings.TrimPrefix(tls.AlertError(code).Error(), "tls: ")
		byText[text] = code
		alias[strings.ReplaceAll(text, " ", "_")] = name
	}
	return byText, alias
}()

// AlertName returns the RFC 8446 name of the alert code, such as unknown_ca,
// or "" for a code that no RFC names.
func AlertName(code uint8) string { return alertNames[code] }

// NormalizeAlert returns the RFC 8446 name of an alert written in an
// expectation: an RFC name (unknown_ca) or crypto/tls's wording with
// underscores (unknown_certificate_authority), in any case. ok is false
// for a name that is neither.
func NormalizeAlert(name string) (rfc string, ok bool) {
	rfc, ok = aliases[strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), " ", "_"))]
	return rfc, ok
}

// AlertByGoText returns the code of the alert that crypto/tls words as text
// (without its "tls: " prefix), such as "unknown certificate authority".
func AlertByGoText(text string) (uint8, bool) {
	code, ok := goAlerts[text]
	return code, ok
}
