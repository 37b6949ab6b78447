package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// tlsFiles are the PEM files a TLS node is started with (WithTLS), and the
// client certificate it requires (WithTLSClientAuth), if any.
type tlsFiles struct {
	certFile, keyFile, caFile     string
	clientCertFile, clientKeyFile string // "": clients need no certificate
}

// clientConfig returns the client side of the node's TLS: trust caFile and,
// when the node requires one, present the client certificate.
func (f *tlsFiles) clientConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, fmt.Errorf("redistest: TLS CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redistest: TLS CA file %s: no PEM certificate in it", f.caFile)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if f.clientCertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.clientCertFile, f.clientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redistest: TLS client certificate %s, key %s: %w", f.clientCertFile, f.clientKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// TestPKI is the set of PEM files WriteTestPKI writes: a throw-away
// certificate authority, a server certificate and a client certificate it
// signs.
type TestPKI struct {
	// CA is the authority's certificate, which both sides trust.
	CA string
	// ServerCert and ServerKey are valid for 127.0.0.1, ::1 and localhost.
	ServerCert, ServerKey string
	// ClientCert and ClientKey identify a client (CommonName
	// "redistest client") to a node started WithTLSClientAuth.
	ClientCert, ClientKey string
}

// WriteTestCerts creates a throw-away certificate authority and a server
// certificate it signs, for 127.0.0.1, ::1 and localhost and valid for a
// day, and writes them to dir as PEM files for WithTLS: the server's
// certificate (server.crt), its key (server.key) and the authority's
// certificate (ca.crt), which clients put in their tls.Config RootCAs.
// WriteTestPKI also writes a client certificate.
func WriteTestCerts(dir string) (certFile, keyFile, caFile string, err error) {
	p, err := WriteTestPKI(dir)
	if err != nil {
		return "", "", "", err
	}
	return p.ServerCert, p.ServerKey, p.CA, nil
}

// WriteTestPKI writes to dir, as WriteTestCerts does, a throw-away
// authority (ca.crt) and a server certificate (server.crt, server.key), and
// also a client certificate the authority signs (client.crt, client.key),
// all valid for a day. Each call makes a new authority: the files of two
// calls do not trust each other.
func WriteTestPKI(dir string) (TestPKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TestPKI{}, fmt.Errorf("redistest: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return TestPKI{}, fmt.Errorf("redistest: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return TestPKI{}, fmt.Errorf("redistest: CA certificate: %w", err)
	}
	p := TestPKI{
		CA:         filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
	}
	if err := writePEM(p.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return TestPKI{}, err
	}
	for _, leaf := range []struct {
		what              string
		tmpl              *x509.Certificate
		certFile, keyFile string
	}{
		{"server", &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "127.0.0.1"},
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			DNSNames:     []string{"localhost"},
		}, p.ServerCert, p.ServerKey},
		{"client", &x509.Certificate{
			SerialNumber: big.NewInt(3),
			Subject:      pkix.Name{CommonName: "redistest client"},
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, p.ClientCert, p.ClientKey},
	} {
		leaf.tmpl.NotBefore, leaf.tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		leaf.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return TestPKI{}, fmt.Errorf("redistest: %s key: %w", leaf.what, err)
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf.tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return TestPKI{}, fmt.Errorf("redistest: %s certificate: %w", leaf.what, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return TestPKI{}, fmt.Errorf("redistest: %s key: %w", leaf.what, err)
		}
		if err := writePEM(leaf.certFile, "CERTIFICATE", der, 0o644); err != nil {
			return TestPKI{}, err
		}
		if err := writePEM(leaf.keyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
			return TestPKI{}, err
		}
	}
	return p, nil
}

// writePEM writes one PEM block to path.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}
