package netns

import (
	"strings"
	"testing"
)

func TestUniqueNameShortMarkedAndDistinct(t *testing.T) {
	prefixes := []string{"", "a", "tcp", "np", "npveth", "averyveryverylongprefix", "bad/na me:x"}
	seen := make(map[string]bool)
	for _, prefix := range prefixes {
		for range 50 {
			name := UniqueName(prefix)
			if len(name) > MaxNameLen {
				t.Errorf("UniqueName(%q) = %q: %d chars, want <= %d", prefix, name, len(name), MaxNameLen)
			}
			if !strings.HasPrefix(name, "np") {
				t.Errorf("UniqueName(%q) = %q: want prefix np", prefix, name)
			}
			if strings.ContainsAny(name, "/ :") {
				t.Errorf("UniqueName(%q) = %q: contains a character interface names cannot hold", prefix, name)
			}
			if seen[name] {
				t.Errorf("UniqueName(%q) = %q twice", prefix, name)
			}
			seen[name] = true
		}
	}
	if name := UniqueName("tcp"); !strings.HasPrefix(name, "nptcp") {
		t.Errorf("UniqueName(tcp) = %q: want it to keep the prefix (nptcp...)", name)
	}
	if name := UniqueName("npveth"); !strings.HasPrefix(name, "npveth") || strings.HasPrefix(name, "npnp") {
		t.Errorf("UniqueName(npveth) = %q: want np not doubled", name)
	}
}

// FuzzUniqueName checks that any prefix yields a valid interface name.
func FuzzUniqueName(f *testing.F) {
	for _, seed := range []string{"", "np", "veth", "a/b c:d", "ünïcode", strings.Repeat("x", 40)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, prefix string) {
		name := UniqueName(prefix)
		if len(name) > MaxNameLen || len(name) < len("np")+suffixLen {
			t.Fatalf("UniqueName(%q) = %q: length %d outside [%d, %d]", prefix, name, len(name), len("np")+suffixLen, MaxNameLen)
		}
		if !strings.HasPrefix(name, "np") {
			t.Fatalf("UniqueName(%q) = %q: want prefix np", prefix, name)
		}
		for _, r := range name {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				t.Fatalf("UniqueName(%q) = %q: character %q not allowed in interface names", prefix, name, r)
			}
		}
	})
}
