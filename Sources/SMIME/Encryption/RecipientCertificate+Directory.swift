// SPDX-License-Identifier: Apache-2.0

extension RecipientCertificate {
    /// The certificates of one directory value: `userCertificate;binary` holds one DER
    /// certificate, `userSMIMECertificate` (RFC 2798 §2.8) a PKCS#7 SignedData carrying the
    /// certificate and, often, its chain. Returned end-entity first (the first certificate that is
    /// not a CA), then the others in the order they came, so that the import keeps the right
    /// one for the address and the rest as its intermediates.
    ///
    /// - Throws: when the value is neither a certificate nor a SignedData with certificates.
    public static func certificates(directoryValue der: [UInt8]) throws -> [RecipientCertificate] {
        if let single = try? RecipientCertificate(der: der) { return [single] }
        let carried = CMSVerifier.embeddedCertificatesPEM(der)
        guard !carried.isEmpty else {
            throw SMIMEError(.invalidCertificate, "the value is neither a DER certificate nor a PKCS#7 SignedData with certificates")
        }
        var certificates = try certificates(pem: carried)
        if let leaf = certificates.firstIndex(where: { !$0.info.isCA }), leaf != 0 {
            certificates.insert(certificates.remove(at: leaf), at: 0)
        }
        return certificates
    }
}
