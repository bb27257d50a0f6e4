# edgectl — see README.md. Every target works on a fresh Debian machine with Go.
GO      ?= go
BIN     ?= bin/edgectl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/edgectl/edgectl/pkg/cli.version=$(VERSION) -X github.com/edgectl/edgectl/pkg/cli.commit=$(COMMIT)
EXAMPLE := examples/open-banking
# Test packages run in parallel; the suite is sized for 2 cores.
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: editor-tools bench-check all build test demo certs lint vet fmt bench fuzz tools demo-tools install-missing clean release release-check generate bench-peers

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgectl

## test: vet, then every test (with the race detector).
test: tools vet bench-check
	$(GO) test $(TESTFLAGS) ./...

## demo: build, reuse or regenerate the demo PKI, then validate, plan, apply and serve the
## example, and show partners' calls with curl and openssl (see examples/open-banking/demo.sh).
## Ports: DEMO_EDGE_PORT (8443), DEMO_ADMIN_PORT (9901), DEMO_ORIGIN_PORT (9000), such as
## make demo DEMO_EDGE_PORT=18443 DEMO_ADMIN_PORT=19901 DEMO_ORIGIN_PORT=19000
DEMO_EDGE_PORT   ?= 8443
DEMO_ADMIN_PORT  ?= 9901
DEMO_ORIGIN_PORT ?= 9000
demo: demo-tools build certs
	EDGECTL=$(BIN) DEMO_EDGE_PORT=$(DEMO_EDGE_PORT) DEMO_ADMIN_PORT=$(DEMO_ADMIN_PORT) DEMO_ORIGIN_PORT=$(DEMO_ORIGIN_PORT) ./$(EXAMPLE)/demo.sh

## certs: reuse the demo PKI of the example, regenerating it when missing or close to expiry.
certs:
	$(GO) run $(EXAMPLE)/certs/gen.go -out $(EXAMPLE)/certs

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: formatting and vet; fails on any finding.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: Go benchmarks of the hot paths.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## fuzz: run each fuzz target for FUZZTIME (default 30s); their seed corpora also run in make test.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzLoad:./pkg/manifest/ FuzzValidate:./pkg/validate/ FuzzRules:./pkg/rules/ FuzzNormalizePath:./pkg/rules/ FuzzHeaderSafe:./internal/headersafe/ FuzzCanonicalHeaderKey:./pkg/rules/ FuzzSlashDN:./pkg/pki/ FuzzDNForms:./pkg/pki/ FuzzDecodeSnapshot:./pkg/state/ FuzzServeConn:./pkg/server/h1/ FuzzDifferential:./pkg/server/h1/ FuzzReadResponse:./pkg/proxy/ FuzzReadRequest:./pkg/server/h1/ FuzzDifferential:./pkg/server/h2/ FuzzFieldEncoder:./pkg/server/h2/ FuzzDifferential:./internal/rawio/ FuzzOriginForm:./internal/httphead/ FuzzEscapedPEM:./pkg/pki/
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## tools: install the programs tests drive (curl, openssl, etcd from Debian's etcd-server, nginx,
## node and npm) when missing, then the editor engine the schema tests drive (editor-tools).
## demo-tools: only what the demo drives (curl, openssl).
TOOLS      := curl:curl openssl:openssl etcd:etcd-server nginx:nginx node:nodejs npm:npm
DEMO_TOOLS := curl:curl openssl:openssl
tools:
	@$(MAKE) --no-print-directory install-missing PROGRAMS="$(TOOLS)"
	@$(MAKE) --no-print-directory editor-tools

## editor-tools: yaml-language-server (the engine of the VS Code YAML extension), pinned by
## tools/editor/package-lock.json, into tools/editor/node_modules (npm ci, when out of date).
editor-tools:
	@[ tools/editor/node_modules/.package-lock.json -nt tools/editor/package-lock.json ] || \
		npm ci --prefix tools/editor --no-audit --no-fund
demo-tools:
	@$(MAKE) --no-print-directory install-missing PROGRAMS="$(DEMO_TOOLS)"
install-missing:
	@missing=""; for t in $(PROGRAMS); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi

## generate: regenerate what is generated from the code (JSON Schemas, docs/reference/,
## docs/cli/, the model of edgectl explain); a test fails when it is stale.
generate:
	$(GO) generate ./...

## bench-peers: the side-by-side harness of bench/ (nginx, HAProxy, Caddy, a plain Go proxy
## and edgectl on loopback): builds edgectl, installs the peers when missing, runs the matrix
## and writes bench/results/<timestamp>/ (results.json, table.md, table.txt). Takes minutes.
BENCH_TARGETS ?= nginx haproxy caddy gobase edgectl
BENCH_ARGS    ?= -a ecdsa -r 2
BENCH_PEERS   := nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk taskset:util-linux openssl:openssl
bench-peers: build
	@$(MAKE) --no-print-directory install-missing PROGRAMS="$(BENCH_PEERS)"
	cd bench && EDGECTL=$(abspath $(BIN)) ./run.sh -t "$(BENCH_TARGETS)" $(BENCH_ARGS)

## bench-check: a smoke check of the harness: shell syntax, and its Go programs vet and test.
bench-check:
	@for f in bench/*.sh bench/lib/*.sh bench/targets/*.sh; do bash -n $$f || exit 1; done
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

## release: checksummed, reproducible binaries for linux and darwin on amd64 and arm64 in
## DIST (dist/VERSION/edgectl-VERSION-OS-ARCH and SHA256SUMS). Static (CGO_ENABLED=0),
## -trimpath and an empty build ID, so the same commit and Go version give the same bytes
## anywhere. The binary for this machine's platform is run to check the version it reports.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST      ?= dist/$(VERSION)
RELEASE_LDFLAGS := -s -w -buildid= $(LDFLAGS)
release:
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/edgectl-$(VERSION)-$$os-$$arch; echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(RELEASE_LDFLAGS)" -o $$out ./cmd/edgectl || exit 1; \
	done
	@cd $(DIST) && sha256sum edgectl-* > SHA256SUMS && cat SHA256SUMS
	@host=$(DIST)/edgectl-$(VERSION)-$$($(GO) env GOOS)-$$($(GO) env GOARCH); \
	if [ -x $$host ]; then \
		$$host version | grep -qx 'edgectl $(VERSION)' || { echo "release: $$host does not report $(VERSION):"; $$host version; exit 1; }; \
		echo "release: $$host reports $(VERSION)"; \
	fi

## release-check: build this machine's release binary twice in two directories and
## require identical checksums (reproducibility) and the right version.
release-check:
	@d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; p=$$($(GO) env GOOS)/$$($(GO) env GOARCH); \
	$(MAKE) --no-print-directory release PLATFORMS=$$p DIST=$$d/a >/dev/null && \
	$(MAKE) --no-print-directory release PLATFORMS=$$p DIST=$$d/b >/dev/null && \
	if cmp -s $$d/a/SHA256SUMS $$d/b/SHA256SUMS; then echo "release-check: $$p reproducible: $$(cat $$d/a/SHA256SUMS)"; \
	else echo "release-check: $$p differs between two builds"; cat $$d/a/SHA256SUMS $$d/b/SHA256SUMS; exit 1; fi

clean:
	rm -rf bin dist
