package main

import (
	"os"

	"github.com/netprov/netprov/cni"
)

// isCNI reports that a container runtime runs us as a CNI plugin.
func isCNI() bool { return os.Getenv("CNI_COMMAND") != "" }

// runCNI runs the CNI plugin (type "netprov") and exits.
func runCNI() {
	cni.Main("netprov CNI plugin: userspace TCP/IP stack per sandbox")
}
