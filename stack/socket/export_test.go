package socket

import "github.com/netprov/netprov/stack"

// WrapEndpoint replaces so's endpoint with wrap(its endpoint), for tests
// that act between the calls one socket operation makes on its endpoint.
func WrapEndpoint(so *Socket, wrap func(stack.Endpoint) stack.Endpoint) { so.ep = wrap(so.ep) }
