// Package header parses and builds the wire formats of the protocols the
// stack speaks. Each protocol has a view type over a byte slice with field
// accessors (zero-copy, for the hot path) and, where useful, a parsed
// representation with Parse and Emit. Parse functions validate lengths
// before any accessor is used, so no malformed input can make them panic.
package header

import "errors"

// Errors returned by the parsers. Callers count them as drops.
var (
	ErrTruncated   = errors.New("header: packet shorter than its header")
	ErrMalformed   = errors.New("header: malformed header")
	ErrBadChecksum = errors.New("header: bad checksum")
	ErrVersion     = errors.New("header: wrong IP version")
)
