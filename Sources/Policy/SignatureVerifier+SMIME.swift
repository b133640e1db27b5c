import SMIME

/// The real verifier is the policy's verifier.
extension MessageVerifier: SignatureVerifier {}
