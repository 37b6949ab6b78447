package redisdocker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ory/dockertest/v3/docker"
)

const (
	// OfficialImage is used when it is present locally or can be pulled.
	OfficialImage = "redis:7"
	// LocalImage is built from the host's redis-server when redis:7 is
	// unavailable, e.g. on a machine without a registry.
	LocalImage = "quorumlock/redis:7-local"

	pullTimeout = 20 * time.Second
	buildScript = "testdata/docker/build-image.sh"
)

var imageOnce struct {
	sync.Once
	name string
	err  error
}

// Image returns the image the nodes run: $REDIS_IMAGE if set; else redis:7
// if it is present locally or can be pulled (with a short timeout); else
// quorumlock/redis:7-local, which it builds once per process (unless it
// exists) by running testdata/docker/build-image.sh from the repository root
// (the nearest directory above the working directory, or this source file,
// holding go.mod and that script). The build needs redis-server on the host.
func Image() (string, error) {
	if name := os.Getenv("REDIS_IMAGE"); name != "" {
		return name, nil
	}
	imageOnce.Do(func() { imageOnce.name, imageOnce.err = resolveImage() })
	return imageOnce.name, imageOnce.err
}

func resolveImage() (string, error) {
	pool, err := dockerPool()
	if err != nil {
		return "", err
	}
	client := pool.Client
	if _, err := client.InspectImage(OfficialImage); err == nil {
		return OfficialImage, nil
	}
	pullErr := pullOfficial(client)
	if pullErr == nil {
		if _, err := client.InspectImage(OfficialImage); err == nil {
			return OfficialImage, nil
		}
	}
	if err := buildLocal(); err != nil {
		return "", fmt.Errorf("redisdocker: no Redis image: pulling %s failed (%v) and building %s failed: %w",
			OfficialImage, pullErr, LocalImage, err)
	}
	if _, err := client.InspectImage(LocalImage); err != nil {
		return "", fmt.Errorf("redisdocker: %s reported success but %s is missing: %w", buildScript, LocalImage, err)
	}
	return LocalImage, nil
}

func pullOfficial(client *docker.Client) error {
	repo, tag, _ := strings.Cut(OfficialImage, ":")
	ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
	defer cancel()
	return client.PullImage(docker.PullImageOptions{
		Repository:        repo,
		Tag:               tag,
		OutputStream:      io.Discard,
		InactivityTimeout: pullTimeout / 2,
		Context:           ctx,
	}, docker.AuthConfiguration{})
}

// buildLocal runs the build script, which keeps an existing image.
func buildLocal() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, buildScript))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "IMAGE="+LocalImage)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", buildScript, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// repoRoot finds the directory holding go.mod and the build script, looking
// up from the working directory first and from this source file second.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, buildScript)) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("redisdocker: cannot find the repository root (go.mod next to " + buildScript + ") above the working directory")
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
