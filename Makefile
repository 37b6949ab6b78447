# quorumlock: `make test` is the whole check (what CI runs); `make bench` the figures.
GO ?= go
SHELL := /bin/bash
PKGS := ./...

.PHONY: test check redis bench bench-instances bench-semaphore bench-election bench-go cover

## test: install redis-server if needed, check formatting and vet, run every test with -race
test: redis check
	$(GO) test -race -count=1 $(PKGS)
	cd otel && $(GO) test -race -count=1 ./...

## check: gofmt and go vet
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...
	cd otel && $(GO) vet ./...

## redis: make sure redis-server is installed (apt-get on Debian as root)
redis:
	@bash testdata/ensure-redis.sh

## bench: quorumlock, redsync v4 and the raw floor side by side on five local nodes (BENCH_ROUNDS, default 5);
## writes bench/RESULTS.md and bench/latency.png
bench: redis
	cd bench && $(GO) run . -rounds $${BENCH_ROUNDS:-5}

## bench-instances: contention across service instances (separate processes), quorumlock against redsync,
## bsm/redislock and rueidislock (BENCH_ROUNDS, default 3); writes its section of bench/RESULTS.md and bench/wait-cdf.png
bench-instances: redis
	cd bench && $(GO) run . -suite instances -rounds $${BENCH_ROUNDS:-3}

## bench-semaphore: K=4 permits of one semaphore across 16 instances (separate processes), the lock beside it
## (BENCH_ROUNDS, default 3); writes bench/SEMAPHORE.md
bench-semaphore: redis
	cd bench && $(GO) run . -suite semaphore -rounds $${BENCH_ROUNDS:-3}

## bench-election: election failover after the leader is killed and after it resigns, 4 candidates
## (BENCH_ROUNDS, default 3); writes its section of bench/RESULTS.md
bench-election: redis
	cd bench && $(GO) run . -suite election -rounds $${BENCH_ROUNDS:-3}

## bench-go: the Go benchmarks (ns, allocs and bytes per op), 5 runs each
bench-go: redis
	$(GO) test -run '^$$' -bench LockUnlock -benchtime 3000x -count 5 ./redlock/
	cd bench && $(GO) test -run '^$$' -bench LockUnlock -benchtime 3000x -count 5 .

cover: redis
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS) && $(GO) tool cover -func=cover.out | tail -1

.PHONY: docker-image test-docker

## docker-image: build quorumlock/redis:7-local (FROM scratch + the host's redis-server) unless it exists; FORCE=1 rebuilds
docker-image:
	@bash testdata/docker/build-image.sh

## test-docker: the Docker tier (five containers on a private bridge network, chaos suite included) with -race; needs a Docker daemon
test-docker: docker-image
	$(GO) test -race -count=1 -tags docker ./internal/redisdocker/
	$(GO) test -race -count=1 -tags docker -run 'TestChaosDockerTier' -v ./internal/chaos/ | grep -E '^(chaos|\{|---|ok|FAIL|PASS)|violations'; exit $${PIPESTATUS[0]}

.PHONY: demo chaos chaos-broken

## demo: five local redis-server nodes, contending workers and injected faults; a live line and a summary
demo: redis
	$(GO) run ./cmd/redlock demo --nodes 5

## chaos: a longer soak of both tiers (CHAOS_DURATION, default 3m each; CHAOS_SEED replays a run)
chaos: redis docker-image
	CHAOS_DURATION=$${CHAOS_DURATION:-3m} $(GO) test -count=1 -timeout 0 -tags docker -run 'TestChaos(Process|Docker)Tier' -v ./internal/chaos/ | grep -E '^(chaos|\{|---|ok|FAIL|PASS)|violations'; exit $${PIPESTATUS[0]}

## chaos-broken: the chaos suite must fail on deliberately broken builds (plain DEL, minority quorum, errors as grants, ..., a semaphore counting holders per node)
chaos-broken: redis
	@bash testdata/chaos-broken.sh
