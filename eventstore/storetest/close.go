package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/koers-io/koers/eventstore"
)

func (s suite) testClose(t *testing.T) {
	t.Run("operations after close fail with ErrClosed", func(t *testing.T) {
		st, _ := s.open(t)
		const stream = "case-closed"
		evs := someEvents(1, "before close")
		mustAppend(t, st, stream, eventstore.NoStream, evs...)
		closeStore(t, st)

		ops := []struct {
			name string
			run  func() error
		}{
			{"Append", func() error {
				_, err := st.Append(t.Context(), stream, eventstore.Any, someEvents(1, "after close")...)
				return err
			}},
			{"Append of a retry", func() error {
				_, err := st.Append(t.Context(), stream, eventstore.NoStream, evs...)
				return err
			}},
			{"ReadStream", func() error {
				_, err := st.ReadStream(t.Context(), stream, eventstore.ReadOptions{})
				return err
			}},
			{"ReadStream of a missing stream", func() error {
				_, err := st.ReadStream(t.Context(), "case-missing", eventstore.ReadOptions{})
				return err
			}},
			{"SubscribeAll", func() error {
				for _, err := range st.SubscribeAll(t.Context(), 0) {
					return err // the first item: an error, never an event
				}
				return errors.New("the sequence ended without an error")
			}},
		}
		for _, op := range ops {
			if err := op.run(); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("%s after Close: %v, want an error wrapping eventstore.ErrClosed", op.name, err)
			}
		}
	})

	t.Run("closing twice returns nil or ErrClosed", func(t *testing.T) {
		st, _ := s.open(t)
		closeStore(t, st)
		if err := st.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("second Close: %v, want nil or an error wrapping eventstore.ErrClosed", err)
		}
	})

	t.Run("appends racing close are durable when acknowledged and fail with ErrClosed otherwise", func(t *testing.T) {
		st, dir := s.open(t)
		const writers = 8
		type win struct {
			stream string
			evs    []eventstore.EventData
			res    eventstore.AppendResult
		}
		var (
			mu    sync.Mutex
			wins  []win
			count atomic.Int64
			wg    sync.WaitGroup
			errs  = make(chan error, writers)
			// enough is closed once the writers acknowledged some appends,
			// so that Close lands while appends are in flight.
			enough = make(chan struct{})
			once   sync.Once
		)
		for w := range writers {
			wg.Go(func() {
				stream := fmt.Sprintf("case-racing-close-%d", w)
				for i := 0; ; i++ {
					evs := someEvents(1+i%2, stream)
					res, err := st.Append(t.Context(), stream, eventstore.Any, evs...)
					if errors.Is(err, eventstore.ErrClosed) {
						return
					}
					if err != nil {
						errs <- fmt.Errorf("Append(%q) racing Close: %w, want success or eventstore.ErrClosed", stream, err)
						return
					}
					mu.Lock()
					wins = append(wins, win{stream, evs, res})
					mu.Unlock()
					if count.Add(1) == 50 {
						once.Do(func() { close(enough) })
					}
				}
			})
		}
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		select {
		case <-enough:
		case <-allDone: // every writer failed early; errs says why
		}
		closeStore(t, st)
		<-allDone
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		st = s.openDir(t, dir)
		for _, w := range wins {
			first := w.res.Revision + 1 - uint64(len(w.evs))
			got, err := st.ReadStream(t.Context(), w.stream, eventstore.ReadOptions{From: first, Limit: len(w.evs)})
			if err != nil {
				t.Errorf("ReadStream(%q) of an append acknowledged before Close: %v", w.stream, err)
				continue
			}
			if diff := diffStored(want(w.stream, first, w.evs...), got); diff != "" {
				t.Errorf("an append acknowledged at %q revision %d before Close reads back differently after reopening (-want +got):\n%s",
					w.stream, w.res.Revision, diff)
			}
		}
	})
}
