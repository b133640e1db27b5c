// SPDX-License-Identifier: Apache-2.0
import SMIME

/// The real verifier is the policy's verifier.
extension MessageVerifier: SignatureVerifier {}
