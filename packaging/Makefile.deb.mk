# SPDX-License-Identifier: Apache-2.0
# packaging/Makefile.deb.mk: the Debian package targets, included by the top-level Makefile
# (`include packaging/Makefile.deb.mk`).
#   make deb           release build with the Swift runtime linked in, then dist/smime-milter_*.deb
#   make deb-lint      lintian on that package
#   make package-test  build the package and test it (throw-away root; really installs when CI=true)
DEB_OUT_DIR ?= dist
PYTEST      ?= python3 -m pytest

.PHONY: deb deb-lint package-test

deb:
	DEB_OUT_DIR=$(abspath $(DEB_OUT_DIR)) SWIFT=$(or $(SWIFT),swift) bash scripts/deb-build.sh

deb-lint: deb
	lintian --info --display-info --pedantic $(DEB_OUT_DIR)/smime-milter_*.deb

package-test: deb
	SMIME_MILTER_DEB=$$(ls -t $(abspath $(DEB_OUT_DIR))/smime-milter_*.deb | head -1) \
		$(PYTEST) -v Tests/integration/test_package.py
