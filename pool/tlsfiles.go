package pool

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// tlsFiles are the TLS settings given by name rather than as a tls.Config:
// what a configuration file or a command line holds.
type tlsFiles struct {
	caFile, certFile, keyFile, serverName string
	certSet                               bool // WithTLSClientCert was given
}

// WithTLSCAFile verifies the node's certificate against the authorities in
// the PEM file at path (one or more certificates), read once when the pool
// is built, instead of the system roots. It turns TLS on. An unreadable
// file, or one without a PEM certificate, is an error that names the file.
// Default: the system roots ($SSL_CERT_FILE, $SSL_CERT_DIR).
func WithTLSCAFile(path string) Option {
	return func(c *config) { c.tlsFiles.caFile = path }
}

// WithTLSClientCert presents the certificate in the PEM file certFile, with
// its private key in keyFile, to nodes that require client certificates
// (redis-server --tls-auth-clients yes). Both are read once, when the pool
// is built. It turns TLS on. Default: no client certificate.
func WithTLSClientCert(certFile, keyFile string) Option {
	return func(c *config) { c.tlsFiles.certFile, c.tlsFiles.keyFile, c.tlsFiles.certSet = certFile, keyFile, true }
}

// WithTLSServerName verifies the node's certificate for name instead of the
// host of its address: for nodes reached by IP address or through a proxy.
// It turns TLS on. Default: the host of the address.
func WithTLSServerName(name string) Option {
	return func(c *config) { c.tlsFiles.serverName = name }
}

// set reports whether any TLS file option was given.
func (f tlsFiles) set() bool { return f.caFile != "" || f.certSet || f.serverName != "" }

// config returns a copy of base (or of an empty configuration) with the
// files' settings. Errors name the file, never its contents.
func (f tlsFiles) config(base *tls.Config) (*tls.Config, error) {
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	var errs []error
	if f.caFile != "" {
		if roots, err := readCAFile(f.caFile); err != nil {
			errs = append(errs, err)
		} else {
			cfg.RootCAs = roots
		}
	}
	if f.certSet {
		switch {
		case f.certFile == "" || f.keyFile == "":
			errs = append(errs, fmt.Errorf("TLS client certificate %q and key %q: both files are needed", f.certFile, f.keyFile))
		default:
			pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("TLS client certificate %s and key %s: %w", f.certFile, f.keyFile, err))
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
	}
	if f.serverName != "" {
		cfg.ServerName = f.serverName
	}
	if cfg.RootCAs == nil {
		// The system roots are read on first use, which can take a good
		// part of a second: here, rather than within a dial's timeout.
		x509.SystemCertPool()
	}
	return cfg, errors.Join(errs...)
}

// readCAFile returns the certificates of the PEM file at path.
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TLS CA file: %w", err) // the os error names the file
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", path)
	}
	return roots, nil
}

// readPassword returns the password of c, reading its file or variable.
// set is false when no password was given. Errors name the file or the
// variable, never what it holds.
func (c *config) readPassword() (password string, set bool, err error) {
	switch c.passwordSource {
	case passwordLiteral:
		return c.password, true, nil
	case passwordFile:
		b, err := os.ReadFile(c.password)
		if err != nil {
			return "", false, fmt.Errorf("password file: %w", err) // the os error names the file
		}
		pw := string(b)
		if s, ok := strings.CutSuffix(pw, "\n"); ok {
			pw = strings.TrimSuffix(s, "\r")
		}
		switch {
		case pw == "":
			return "", false, fmt.Errorf("password file %s: empty", c.password)
		case strings.ContainsAny(pw, "\r\n"):
			return "", false, fmt.Errorf("password file %s: more than one line", c.password)
		}
		return pw, true, nil
	case passwordEnv:
		pw, ok := os.LookupEnv(c.password)
		switch {
		case c.password == "":
			return "", false, errors.New("password environment variable: empty name")
		case !ok:
			return "", false, fmt.Errorf("password environment variable %s: not set", c.password)
		case pw == "":
			return "", false, fmt.Errorf("password environment variable %s: empty", c.password)
		}
		return pw, true, nil
	}
	return "", false, nil
}
