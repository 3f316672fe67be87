# airdock: the README's contract. `make demo` and `make test` both run `make setup` first;
# `make test` also installs what only the tests need (scripts/test-setup.sh).
.PHONY: setup test-setup demo test check start stop

setup:
	bash scripts/setup.sh

test-setup: setup
	bash scripts/test-setup.sh

demo: setup
	bash scripts/demo.sh

test: test-setup
	npm run format:check
	npm run lint
	npm run check:cycles
	npm run typecheck
	npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json; \
	  status=$$?; node scripts/test-summary.mjs test-results/vitest.json || true; exit $$status

start: setup
	npm start

# Stops this data dir's control plane, every environment and PostgreSQL (needs no setup).
stop:
	npx --no-install tsx src/cli.ts stop --all
