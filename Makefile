# quorumlock: `make test` is the whole check (what CI runs); `make bench` the figures.
GO ?= go
PKGS := ./...

.PHONY: test check redis bench cover

## test: install redis-server if needed, check formatting and vet, run every test with -race
test: redis check
	$(GO) test -race -count=1 $(PKGS)

## check: gofmt and go vet
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## redis: make sure redis-server is installed (apt-get on Debian as root)
redis:
	@bash testdata/ensure-redis.sh

## bench: TryLock+Unlock on 1, 3, 5 nodes and 5 with one frozen; 5 runs for medians
bench: redis
	$(GO) test -run '^$$' -bench LockUnlock -benchtime 3000x -count 5 ./redlock/

cover: redis
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS) && $(GO) tool cover -func=cover.out | tail -1
