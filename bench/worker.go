package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// workerFlag, as the first argument, makes the bench binary one service
// instance of the instances suite (see instances.go for the protocol).
const workerFlag = "-worker"

// workerConfig is what the parent sends a worker, as one JSON line on its
// stdin; the start time follows on a line of its own once every worker is
// ready.
type workerConfig struct {
	ID       int           `json:"id"`
	Lib      string        `json:"lib"`
	Addrs    []string      `json:"addrs"`
	Key      string        `json:"key"`
	Hold     time.Duration `json:"hold"`
	Pause    time.Duration `json:"pause"`
	Duration time.Duration `json:"duration"`
	Permits  int           `json:"permits,omitempty"` // > 0: a permit of quorumlock's semaphore (semaphore.go)
	// Instances is how many run together (the floor's ring, instfloor.go).
	Instances int `json:"instances"`
}

// workerResult is what a worker writes on its stdout at the end. Times are
// wall-clock Unix nanoseconds: the processes share the machine's clock.
type workerResult struct {
	ID int `json:"id"`
	// Acq holds, per acquisition: when the acquire call started, when it
	// returned the lock, when release was called.
	Acq [][3]int64 `json:"acq"`
	// GaveUp counts acquire calls that returned an error before the run's
	// end; Errors keeps the first few messages.
	GaveUp     int      `json:"gave_up"`
	UnlockErrs int      `json:"unlock_errs"`
	Errors     []string `json:"errors,omitempty"`
	// Unfinished is when the acquire call still waiting at the run's end
	// started (0: none).
	Unfinished int64 `json:"unfinished"`
}

// workerMain is the worker: read the configuration, build the client and
// warm its connections, say "ready", wait for the start time, run, write the
// result.
func workerMain() error {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the configuration: %w", err)
	}
	var cfg workerConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var l waitLocker
	for range 10 { // rueidis dials in its constructor: a loaded machine can time it out
		if l, err = newLocker(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s client, 10 attempts: %w", cfg.Lib, err)
	}
	defer l.close()
	if err := warmUp(l, cfg); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(os.Stdout, "ready"); err != nil {
		return err
	}
	line, err = in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the start time: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(line)), 10, 64)
	if err != nil {
		return fmt.Errorf("start time: %w", err)
	}
	res := work(l, cfg, time.Unix(0, ns))
	return json.NewEncoder(os.Stdout).Encode(res)
}

// warmUp opens the connections (and loads the scripts) with one
// acquisition and release of a name nobody else uses. On a loaded machine
// an attempt can time out, so it tries again, each time with a new name (a
// timed-out attempt may leave its key behind; and a rueidislock waiter
// whose attempt timed out waits for a change to the key that would never
// come on a private name).
func warmUp(l waitLocker, cfg workerConfig) error {
	var err error
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var unlock func() error
		unlock, err = l.tryLock(ctx, fmt.Sprintf("%s:warm:%d:%d", cfg.Key, cfg.ID, i))
		cancel()
		if err == nil {
			if err = unlock(); err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s warm-up, 20 attempts: %w", cfg.Lib, err)
}

// work loops from start for cfg.Duration: blocking acquire, hold, release,
// pause.
func work(l waitLocker, cfg workerConfig, start time.Time) workerResult {
	end := start.Add(cfg.Duration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	res := workerResult{ID: cfg.ID, Acq: make([][3]int64, 0, 1024)}
	time.Sleep(time.Until(start))
	for time.Now().Before(end) {
		asked := time.Now()
		unlock, err := l.lock(ctx, cfg.Key)
		if err != nil {
			if ctx.Err() != nil { // the run ended while it waited
				res.Unfinished = asked.UnixNano()
				break
			}
			res.GaveUp++
			if len(res.Errors) < 3 {
				res.Errors = append(res.Errors, err.Error())
			}
			time.Sleep(max(cfg.Pause, time.Millisecond)) // no busy loop on a failing node
			continue
		}
		got := time.Now()
		if cfg.Hold > 0 {
			time.Sleep(cfg.Hold)
		}
		rel := time.Now()
		if err := unlock(); err != nil {
			res.UnlockErrs++
			if len(res.Errors) < 3 {
				res.Errors = append(res.Errors, "release: "+err.Error())
			}
		}
		res.Acq = append(res.Acq, [3]int64{asked.UnixNano(), got.UnixNano(), rel.UnixNano()})
		if cfg.Pause > 0 {
			time.Sleep(cfg.Pause)
		}
	}
	return res
}
