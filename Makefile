# edgectl — see README.md. Every target works on a fresh Debian machine with Go.
GO      ?= go
BIN     ?= bin/edgectl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/edgectl/edgectl/pkg/cli.version=$(VERSION)
EXAMPLE := examples/open-banking
# Test packages run in parallel; the suite is sized for 2 cores.
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build test demo certs lint vet fmt bench fuzz tools demo-tools install-missing clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgectl

## test: vet, then every test (with the race detector).
test: tools vet
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
FUZZ_TARGETS := FuzzLoad:./pkg/manifest/ FuzzValidate:./pkg/validate/ FuzzRules:./pkg/rules/ FuzzHeaderSafe:./pkg/pki/ FuzzSlashDN:./pkg/pki/ FuzzDNForms:./pkg/pki/ FuzzServeConn:./pkg/server/h1/ FuzzDifferential:./pkg/server/h1/
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## tools: install the programs tests drive (curl, openssl, etcd from Debian's etcd-server, nginx) when missing.
## demo-tools: only what the demo drives (curl, openssl).
TOOLS      := curl:curl openssl:openssl etcd:etcd-server nginx:nginx
DEMO_TOOLS := curl:curl openssl:openssl
tools:
	@$(MAKE) --no-print-directory install-missing PROGRAMS="$(TOOLS)"
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

clean:
	rm -rf bin
