package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version describes the build: the module version and, when built from a
// checkout, the VCS revision.
func version() string {
	v, rev, dirty := "(devel)", "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev
		if dirty {
			v += "+dirty"
		}
	}
	return fmt.Sprintf("netprov %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func runVersion(context.Context, []string) error {
	fmt.Println(version())
	return nil
}
