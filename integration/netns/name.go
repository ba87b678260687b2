package netns

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

const (
	// MaxNameLen is the longest Linux interface name (IFNAMSIZ - 1). Names
	// from UniqueName fit, so they serve for namespaces and devices alike.
	MaxNameLen = 15
	// namePrefix marks everything the test kit creates, so leftovers of a
	// crashed test run are recognisable.
	namePrefix = "np"
	suffixLen  = 6
)

// UniqueName returns a short name "np" + prefix + random suffix of at most
// MaxNameLen characters. Characters that interface names cannot hold are
// dropped from prefix and a long prefix is cut.
func UniqueName(prefix string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return -1
	}, prefix)
	clean = strings.TrimPrefix(clean, namePrefix)
	if maxPrefix := MaxNameLen - len(namePrefix) - suffixLen; len(clean) > maxPrefix {
		clean = clean[:maxPrefix]
	}
	return fmt.Sprintf("%s%s%0*x", namePrefix, clean, suffixLen, rand.Uint32N(1<<(4*suffixLen)))
}
