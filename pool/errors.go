package pool

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by Get after Close.
	ErrClosed = errors.New("pool: closed")
	// ErrInvalidOption is returned (New: by Get and Validate) when an
	// option is out of range or names a file or an environment variable
	// that cannot be read.
	ErrInvalidOption = errors.New("pool: invalid option")
	// ErrInvalidURL is returned by ParseURL and FromURL when the URL cannot
	// name a node; the error is a *URLError.
	ErrInvalidURL = errors.New("pool: invalid URL")
)

// URLError is the error of a URL that ParseURL refuses. Neither URL nor the
// message holds the password.
type URLError struct {
	// URL is the URL as given, with its password replaced by "xxxxx".
	URL string
	// Part names what is wrong: "scheme", "user", "password", "host",
	// "port", "db", "query", `query parameter "name"` or "fragment".
	Part string
	// Err says why.
	Err error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("%v %q: %s: %v", ErrInvalidURL, e.URL, e.Part, e.Err)
}

// Unwrap returns ErrInvalidURL and the cause.
func (e *URLError) Unwrap() []error { return []error{ErrInvalidURL, e.Err} }
