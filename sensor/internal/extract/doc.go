// Package extract pulls the few identifying fields the sensor needs out of
// raw application payloads: the TLS ClientHello (SNI, ALPN, versions), the
// HTTP/1.x request head (Host, User-Agent) and DNS messages, and escapes the
// resulting attacker-controlled strings for JSON, logs and terminals.
//
// Every parser works on a byte slice as captured from the wire and is written
// for hostile input: all lengths are bounds-checked, the work done is bounded
// by the input size, and no input makes a parser panic or loop. Results alias
// the input (or a caller-provided scratch buffer) instead of copying, so the
// hot path does not allocate; callers that keep a result beyond the life of
// the packet buffer must copy it. Returned slices are capped (full slice
// expressions), so appending to one never overwrites the input.
//
// Failures are reported with package-level sentinel errors, to be compared
// with errors.Is (or ==; they are never wrapped here).
//
// This package imports only the standard library.
package extract
