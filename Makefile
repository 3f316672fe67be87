# airdock: the README's contract. `make demo` and `make test` both run `make setup` first.
.PHONY: setup demo test check start

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	npm run format:check
	npm run lint
	npm run check:cycles
	npm run typecheck
	npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json; \
	  status=$$?; node scripts/test-summary.mjs test-results/vitest.json || true; exit $$status

start: setup
	npm start
