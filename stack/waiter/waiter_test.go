package waiter

import "testing"

func TestNotifyFiltersByMaskButAlwaysDeliversErrAndHup(t *testing.T) {
	var q Queue
	var got []EventMask
	e := &Entry{Mask: EventIn, Callback: func(m EventMask) { got = append(got, m) }}
	q.Register(e)
	q.Notify(EventOut)
	q.Notify(EventIn | EventOut)
	q.Notify(EventHUp)
	if len(got) != 2 || got[0] != EventIn || got[1] != EventHUp {
		t.Fatalf("callbacks got %v, want [In HUp]", got)
	}
	q.Unregister(e)
	if !q.Empty() {
		t.Fatal("queue not empty after Unregister")
	}
	q.Notify(EventIn)
	if len(got) != 2 {
		t.Fatal("unregistered entry was called")
	}
}

func TestChannelEntryNeverBlocks(t *testing.T) {
	var q Queue
	e, ch := ChannelEntry(EventIn)
	q.Register(e)
	for i := 0; i < 5; i++ {
		q.Notify(EventIn)
	}
	<-ch
	select {
	case <-ch:
		t.Fatal("channel held more than one pending signal")
	default:
	}
}
