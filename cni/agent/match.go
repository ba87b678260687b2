package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
)

// Match says how a container's sandbox was found.
type Match struct {
	Dir string // the sandbox's state directory
	By  string // "netns" or "container id"
}

// errNoSandbox: no sandbox belongs to the container.
var errNoSandbox = errors.New("no sandbox")

// nsID identifies a namespace file (st_dev, st_ino).
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// FindSandbox finds the sandbox of a container under stateDir: the one
// whose recorded netns is the network namespace of pid (the container's
// init, host pid namespace), else the one named by the container id.
func FindSandbox(stateDir string, pid int, id string) (Match, error) {
	if stateDir == "" {
		stateDir = control.DefaultStateDir
	}
	var why []error
	if pid > 0 {
		ns, err := statNS(filepath.Join("/proc", strconv.Itoa(pid), "ns", "net"))
		if err != nil {
			why = append(why, fmt.Errorf("netns of pid %d: %w", pid, err))
		} else if dir, err := sandboxByNetns(stateDir, ns); err == nil {
			return Match{Dir: dir, By: "netns"}, nil
		} else {
			why = append(why, err)
		}
	}
	if id != "" && filepath.Base(id) == id && id != "." && id != ".." {
		dir := control.SandboxDir(stateDir, id)
		if _, err := os.Stat(filepath.Join(dir, control.SocketFile)); err == nil {
			return Match{Dir: dir, By: "container id"}, nil
		}
		why = append(why, fmt.Errorf("no %s for container id %s", control.SocketFile, id))
	}
	return Match{}, fmt.Errorf("%w: %w", errNoSandbox, errors.Join(why...))
}

// sandboxByNetns scans the sandboxes' config.json for a netns that is ns.
func sandboxByNetns(stateDir string, ns nsID) (string, error) {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("state directory %s does not exist", stateDir)
		}
		return "", err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(stateDir, e.Name())
		cfg, err := control.ReadSandboxConfig(dir)
		if err != nil || cfg.Netns == "" {
			continue
		}
		if got, err := statNS(cfg.Netns); err == nil && got == ns {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no sandbox in %s records netns %d:%d", stateDir, ns.dev, ns.ino)
}
