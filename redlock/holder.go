package redlock

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxHolderLen is the longest holder label accepted (WithHolder), in bytes.
const MaxHolderLen = 128

// Holder says who took a lock: the process that made the acquisition and
// when. It travels in the lock's value, after the random secret that makes
// the value unique (ALGORITHM.md A1, M1), so it is written by the same
// request that takes the lock, on every node, and expires with it. Reading
// it (Client.Holder) never reveals the secret (M2).
type Holder struct {
	Host  string `json:"host"`            // the holder's os.Hostname(), read once by New; "" if unknown
	PID   int    `json:"pid"`             // its process id
	Label string `json:"label,omitempty"` // WithHolder's label, "" when none
	// Since is the holder's wall clock when its attempt started, to the
	// millisecond. It is for people: nothing safety-related is computed
	// from it (A7 uses the monotonic clock), and across machines it is as
	// right as their clocks.
	Since time.Time `json:"since"`
}

// String describes the holder in one line: `label (host, pid 1234)`, or
// `host, pid 1234` without a label.
func (h *Holder) String() string {
	who := fmt.Sprintf("%s, pid %d", h.Host, h.PID)
	if h.Host == "" {
		who = fmt.Sprintf("pid %d", h.PID)
	}
	if h.Label != "" {
		return strconv.Quote(h.Label) + " (" + who + ")"
	}
	return who
}

// base32Alphabet is rand.Text's: RFC 4648 base32.
const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// The holder part of a value (M1): the secret, one space, then
//
//	{"h":"host","p":1234,"t":1764620000123,"l":"label"}
//
// with "l" only when a label was given. holderHead returns everything up
// to the time, which is the same for every acquisition of the process:
// New builds it once.
func holderHead() string {
	host, _ := os.Hostname()
	b := []byte(` {"h":`)
	b = appendJSONString(b, host)
	b = append(b, `,"p":`...)
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	return string(append(b, `,"t":`...))
}

// value returns a new value for one acquisition attempt (A1, M1): 128
// random bits from crypto/rand, then the holder part, stamped with the
// attempt's wall-clock time and cfg's label. The scripts compare whole
// values, so the holder part changes nothing in how values are used.
func (c *Client) value(cfg *config) string {
	// The secret as rand.Text makes it (26 base32 characters, 130 bits),
	// built in place: this runs on every attempt, and rand.Text would cost
	// two allocations more.
	var secret [26]byte
	rand.Read(secret[:])
	for i, r := range secret {
		secret[i] = base32Alphabet[r%32]
	}
	var buf [256]byte // on the stack: the string below is the one allocation
	b := append(buf[:0], secret[:]...)
	b = append(b, c.holder...)
	b = strconv.AppendInt(b, c.clock.Now().UnixMilli(), 10)
	if cfg.holder != "" {
		b = append(b, `,"l":`...)
		b = appendJSONString(b, cfg.holder)
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b = append(b, '\\', ch)
		case ch < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		default:
			b = append(b, ch)
		}
	}
	return append(b, '"')
}

// parseHolder decodes a holder part, as holder.lua returns it.
func parseHolder(part []byte) (*Holder, error) {
	var h struct {
		H string `json:"h"`
		P int    `json:"p"`
		T int64  `json:"t"`
		L string `json:"l"`
	}
	if err := json.Unmarshal(part, &h); err != nil {
		return nil, fmt.Errorf("unreadable holder: %w", err)
	}
	return &Holder{Host: h.H, PID: h.P, Label: h.L, Since: time.UnixMilli(h.T)}, nil
}

// validHolder checks a holder label (WithHolder) and names it when bad.
func validHolder(label string) error {
	switch {
	case len(label) > MaxHolderLen:
		return fmt.Errorf("%w: holder label of %d bytes (%.20q...): longer than %d", ErrInvalidOption, len(label), label, MaxHolderLen)
	case !utf8.ValidString(label):
		return fmt.Errorf("%w: holder label %q: not valid UTF-8", ErrInvalidOption, label)
	case strings.ContainsFunc(label, unicode.IsControl):
		return fmt.Errorf("%w: holder label %q: holds a control character", ErrInvalidOption, label)
	}
	return nil
}
