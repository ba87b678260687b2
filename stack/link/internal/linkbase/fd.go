package linkbase

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/netprov/netprov/stack/buffer"
)

// FD is the non-blocking file descriptor of an fd-based endpoint, read
// and written through the runtime poller, and its reader goroutine.
type FD struct {
	file *os.File
	// Conn reads and writes the descriptor (waiting in the poller).
	Conn      syscall.RawConn
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Init takes ownership of the non-blocking descriptor fd; name labels the
// file. On error fd is closed.
func (f *FD) Init(fd int, name string) error {
	f.file = os.NewFile(uintptr(fd), name)
	conn, err := f.file.SyscallConn()
	if err != nil {
		f.file.Close()
		return err
	}
	f.Conn = conn
	return nil
}

// Closed reports whether Close was called.
func (f *FD) Closed() bool { return f.closed.Load() }

// RxBatch is what one wake-up of the reader read: the packets to deliver,
// and a fatal read error (the device is gone) that ends the reader.
type RxBatch struct {
	Pkts []*buffer.Packet
	Err  error
}

// StartReader runs the reader goroutine until Close: each wake-up calls
// read (given the descriptor; it returns false to wait for readability,
// as for syscall.RawConn.Read), which fills b, then hands b.Pkts to
// deliver.
func (f *FD) StartReader(b *RxBatch, read func(fd uintptr) bool, deliver func([]*buffer.Packet)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			b.Pkts = b.Pkts[:0]
			b.Err = nil
			err := f.Conn.Read(read)
			if len(b.Pkts) > 0 {
				deliver(b.Pkts)
				clear(b.Pkts)
			}
			if err != nil || b.Err != nil {
				return // closed, or the device is gone (ENETDOWN, ENXIO)
			}
		}
	}()
}

// Close closes the descriptor, waits for the reader to stop and then
// calls release (which frees the reader's buffers). Only the first call
// does anything; later ones return nil.
func (f *FD) Close(release func()) error {
	var err error
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		err = f.file.Close()
		f.wg.Wait()
		release()
	})
	return err
}
