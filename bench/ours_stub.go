//go:build !netprov_ours

package bench

// oursImplementations is empty until netprov's stack has a net.Conn adapter;
// build with -tags netprov_ours to include ours.go instead.
func oursImplementations() []Implementation { return nil }
