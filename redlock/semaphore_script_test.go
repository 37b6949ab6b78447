package redlock

import (
	"fmt"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

// semNode runs sem.lua on one node for semaphore name with k slots.
type semNode struct {
	t    *testing.T
	n    *redistest.Node
	s    *Semaphore
	name string
}

func (x semNode) run(op string, argv ...any) any {
	x.t.Helper()
	args := append([]any{semSrc}, x.s.script(op, argv...)[1:]...)
	v, err := x.n.Do("EVAL", args...)
	if err != nil {
		x.t.Fatalf("sem.lua %s %v: %v", op, argv, err)
	}
	return v
}

// take is a take by waiter id (” outside the line) with ticket, preferring
// slot prefer; it returns the slot granted, or -1.
func (x semNode) take(id string, ticket int, prefer int) int {
	x.t.Helper()
	v := x.run("take", id, "v-"+id+fmt.Sprint(ticket, prefer), 60000, ticket, 60000, "0", prefer, 60000)
	if n, ok := v.(int64); ok && n == 0 {
		return -1
	}
	pair, err := redis.Int64s(v, nil)
	if err != nil {
		x.t.Fatalf("take: %v", err)
	}
	return int(pair[0])
}

func (x semNode) get(i int) string {
	x.t.Helper()
	v, err := redis.String(x.n.Do("GET", SemaphoreSlotKey(x.name, i)))
	if err == redis.ErrNil {
		return ""
	}
	if err != nil {
		x.t.Fatal(err)
	}
	return v
}

func (x semNode) set(i int, v string) {
	x.t.Helper()
	if _, err := x.n.Do("SET", SemaphoreSlotKey(x.name, i), v, "PX", 60000); err != nil {
		x.t.Fatal(err)
	}
}

// S4, S2: the slot-picking rules of sem.lua on one node, case by case.
func TestSemaphoreScriptPicksSlots(t *testing.T) {
	c := redistest.New(t, 1)
	p := pool.New(c.Addrs()[0])
	t.Cleanup(func() { p.Close() })
	cl := newTestClient(t, []pool.Pool{p})
	fresh := func(name string, k int) semNode {
		s, err := cl.Semaphore(name, k)
		if err != nil {
			t.Fatal(err)
		}
		return semNode{t: t, n: c.Nodes()[0], s: s, name: name}
	}
	t.Run("lowest free, or the preferred one", func(t *testing.T) {
		x := fresh("pick-free", 3)
		if got := x.take("", 0, -1); got != 0 {
			t.Fatalf("take with all free = slot %d, want 0", got)
		}
		if got := x.take("", 0, 2); got != 2 {
			t.Fatalf("take preferring free slot 2 = %d, want 2", got)
		}
		if got := x.take("", 0, 0); got != 1 {
			t.Fatalf("take preferring held slot 0 = %d, want the free slot 1", got)
		}
		if got := x.take("", 0, -1); got != -1 {
			t.Fatalf("take with every slot held = %d, want refused", got)
		}
	})
	t.Run("reservations are not free", func(t *testing.T) {
		x := fresh("pick-reserved", 2)
		x.set(0, "~r:wA")
		x.set(1, "~r:wB")
		if got := x.take("", 0, -1); got != -1 {
			t.Fatalf("take outside the line with both slots reserved = %d, want refused", got)
		}
		if got := x.take("wB", 5, -1); got != 1 {
			t.Fatalf("take by wB = %d, want its reserved slot 1", got)
		}
	})
	t.Run("the first waiters take the free slots in order", func(t *testing.T) {
		x := fresh("pick-rank", 3)
		for i := range 3 {
			x.set(i, "held")
		}
		for ticket, id := range []string{"wA", "wB", "wC"} { // all refused, all in line
			if got := x.take(id, ticket+1, -1); got != -1 {
				t.Fatalf("%s with every slot held = %d, want refused", id, got)
			}
		}
		for _, i := range []int{1, 2} {
			if _, err := x.n.Do("DEL", SemaphoreSlotKey(x.name, i)); err != nil {
				t.Fatal(err)
			}
		}
		// Two free slots: for wA and wB; wC and an attempt outside the line
		// are behind them.
		if got := x.take("wC", 3, -1); got != -1 {
			t.Fatalf("wC, third in line, with two free slots = %d, want refused", got)
		}
		if got := x.take("", 0, -1); got != -1 {
			t.Fatalf("an attempt outside the line with three waiting = %d, want refused", got)
		}
		if got := x.take("wB", 2, -1); got != 1 {
			t.Fatalf("wB, second, with two free slots = %d, want slot 1", got)
		}
		if got := x.take("wA", 1, -1); got != 2 {
			t.Fatalf("wA, first = %d, want slot 2", got)
		}
	})
	t.Run("a waiter with a reservation is not ahead", func(t *testing.T) {
		x := fresh("pick-ahead", 2)
		x.run("take", "wA", "x", 60000, 1, 60000, "0", -1, 60000) // enters line, takes slot 0
		x.set(0, "~r:wA")                                         // wA has a reservation
		if got := x.take("wB", 2, -1); got != 1 {
			t.Fatalf("wB behind wA, who has a reservation, = %d, want the free slot 1", got)
		}
	})
	t.Run("a freed slot goes to the first without a reservation", func(t *testing.T) {
		x := fresh("pick-pass", 3)
		x.set(2, "mine")
		x.set(1, "other")
		x.run("take", "wA", "x", 60000, 1, 60000, "0", -1, 60000) // takes slot 0
		x.set(0, "~r:wA")
		x.run("take", "wB", "x", 60000, 2, 60000, "0", -1, 60000) // refused: in line
		if got := x.run("release", "mine", 2, -1, 60000); got != int64(1) {
			t.Fatalf("release of slot 2 = %v, want 1", got)
		}
		if got := x.get(2); got != "~r:wB" {
			t.Fatalf("slot 2 after the release = %q, want reserved for wB", got)
		}
		if got := x.run("release", "mine", -1, -1, 60000); got != int64(0) {
			t.Fatalf("release of a value no slot holds = %v, want 0", got)
		}
		// wA takes its reservation; wB leaves, and its reservation goes on:
		// to nobody, so the slot is deleted.
		if got := x.take("wA", 1, -1); got != 0 {
			t.Fatalf("wA = %d, want its reserved slot 0", got)
		}
		x.run("leave", "wA", 60000, "", -1)
		x.run("leave", "wB", 60000, "", -1)
		if got := x.get(2); got != "" {
			t.Fatalf("slot 2 after wB left with nobody in line = %q, want deleted", got)
		}
	})
	t.Run("a give-back deletes, reserving for nobody", func(t *testing.T) {
		x := fresh("pick-giveback", 2)
		x.set(1, "other")
		x.run("take", "wA", "x", 60000, 1, 60000, "0", -1, 60000) // takes slot 0
		x.set(0, "stray")
		x.run("take", "wB", "x", 60000, 2, 60000, "0", -1, 60000) // refused: in line
		if got := x.run("release", "stray", -1, -1, "0"); got != int64(1) {
			t.Fatalf("give-back = %v, want 1", got)
		}
		if got := x.get(0); got != "" {
			t.Fatalf("slot 0 after a give-back with wB in line = %q, want deleted", got)
		}
	})
	t.Run("taking the preferred slot passes the reservation on", func(t *testing.T) {
		x := fresh("pick-prefer", 2)
		x.run("take", "wA", "x", 60000, 1, 60000, "0", -1, 60000) // takes slot 0
		x.set(0, "~r:wA")
		x.run("take", "wB", "x", 60000, 2, 60000, "0", -1, 60000) // takes free slot 1
		if _, err := x.n.Do("DEL", SemaphoreSlotKey(x.name, 1)); err != nil {
			t.Fatal(err)
		}
		if got := x.take("wA", 1, 1); got != 1 {
			t.Fatalf("wA preferring free slot 1 = %d, want 1", got)
		}
		if got := x.get(0); got != "~r:wB" {
			t.Fatalf("wA's reservation of slot 0 after it took slot 1 = %q, want passed to wB", got)
		}
	})
}
