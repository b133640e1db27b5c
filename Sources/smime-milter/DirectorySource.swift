// SPDX-License-Identifier: Apache-2.0
import CLDAP
import Foundation
import Policy
import SMIME

/// The addresses an LDAP directory says should have identities (`IdentitySource`), and the
/// recipient certificates it holds (`RecipientCertificateSource`), read with
/// OpenLDAP's libldap: an LDAP URL (RFC 4516) `ldap://HOST:PORT/BASE?ATTRIBUTE?SCOPE?FILTER`
/// parsed by `ldap_url_parse`, a simple bind with `IdentitySourceBindDN` and the secret of
/// `IdentitySourceSecretFile` (or anonymous), one search; every value of the attribute that is
/// a plain mailbox, lower-cased. Works with OpenLDAP and Active Directory alike (AD: `mail`
/// and a filter such as `(&(objectCategory=person)(memberOf=CN=Signers,...))`).
struct DirectorySource {
    let url: String
    let bindDN: String?
    let secret: [UInt8]?
    let timeout: Int

    /// At most this many entries are read (bounded work); more is an error, not a truncation:
    /// a truncated list would look like departures.
    static let maximumEntries = 100_000

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The directory at `url`, bound as `IdentitySourceBindDN` with the password of
    /// `IdentitySourceSecretFile` (its line end removed), within `EnrollTimeout`.
    static func configured(url: String, settings: LifecycleSettings) throws -> DirectorySource {
        var secret: [UInt8]?
        if let file = settings.identitySourceSecretFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw Failure(description: "cannot read IdentitySourceSecretFile \(file)")
            }
            secret = [UInt8](data)
            while let last = secret?.last, last == 0x0A || last == 0x0D { secret?.removeLast() }
        }
        return DirectorySource(url: url, bindDN: settings.identitySourceBindDN, secret: secret, timeout: settings.enrollTimeout)
    }

    /// The addresses: every value of the URL's attribute (default `mail`) that is a plain
    /// mailbox, lower-cased.
    func addresses() throws -> Set<String> {
        var found = Set<String>()
        for value in try values(defaultAttributes: ["mail"]) {
            let text = String(decoding: value.bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
            if CertificateRequest.isPlainMailbox(text) { found.insert(text) }
        }
        return found
    }

    /// Every value of the URL's attributes (or `defaultAttributes` when it names none) in every
    /// entry found, with the DN of its entry, as the directory holds them (binary values too).
    func values(defaultAttributes: [String]) throws -> [(dn: String, attribute: String, bytes: [UInt8])] {
        var parsed: UnsafeMutablePointer<LDAPURLDesc>?
        guard ldap_url_parse(url, &parsed) == LDAP_URL_SUCCESS, let desc = parsed else {
            throw Failure(description: "IdentitySource \(url) is not an LDAP URL")
        }
        defer { ldap_free_urldesc(desc) }
        let scheme = desc.pointee.lud_scheme.map { String(cString: $0) } ?? "ldap"
        let host = desc.pointee.lud_host.map { String(cString: $0) } ?? "localhost"
        let port = desc.pointee.lud_port
        let server = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(port > 0 ? ":\(port)" : "")"
        let base = desc.pointee.lud_dn.map { String(cString: $0) } ?? ""
        let filter = desc.pointee.lud_filter.map { String(cString: $0) } ?? "(objectClass=*)"
        var attributes: [String] = []
        if let attrs = desc.pointee.lud_attrs {
            var index = 0
            while let name = attrs[index] { attributes.append(String(cString: name)); index += 1 }
        }
        if attributes.isEmpty { attributes = defaultAttributes }
        let scope = desc.pointee.lud_scope == LDAP_SCOPE_DEFAULT ? LDAP_SCOPE_SUBTREE : desc.pointee.lud_scope

        var handle: OpaquePointer?
        guard ldap_initialize(&handle, server) == LDAP_SUCCESS, let ld = handle else {
            throw Failure(description: "cannot set up a connection to \(server)")
        }
        defer { ldap_unbind_ext_s(ld, nil, nil) }
        _ = smime_ldap_set_version3(ld)
        _ = smime_ldap_set_timeouts(ld, Int32(timeout))
        _ = smime_ldap_no_referrals(ld)

        var secretBytes = secret ?? []
        defer { for i in secretBytes.indices { secretBytes[i] = 0 } }
        let rc: Int32 = secretBytes.withUnsafeMutableBufferPointer { buffer in
            var credential = berval(bv_len: ber_len_t(buffer.count),
                                    bv_val: buffer.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) })
            return ldap_sasl_bind_s(ld, bindDN, smime_ldap_sasl_simple(), &credential, nil, nil, nil)
        }
        guard rc == LDAP_SUCCESS else {
            throw Failure(description: "bind to \(server) as \(bindDN ?? "anonymous") failed: \(String(cString: ldap_err2string(rc)))")
        }
        var result: OpaquePointer?
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        let searched: Int32 = {
            var attrs: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
            defer { for pointer in attrs { free(pointer) } }
            return ldap_search_ext_s(ld, base, scope, filter, &attrs, 0, nil, nil, &limit, Int32(Self.maximumEntries), &result)
        }()
        defer { if let result { ldap_msgfree(result) } }
        guard searched == LDAP_SUCCESS, let result else {
            throw Failure(description: "search of \(base) with \(filter) at \(server) failed: \(String(cString: ldap_err2string(searched)))")
        }
        var found: [(dn: String, attribute: String, bytes: [UInt8])] = []
        var entry = ldap_first_entry(ld, result)
        while let current = entry {
            let dnPointer = ldap_get_dn(ld, current)
            let dn = dnPointer.map { String(cString: $0) } ?? ""
            if let dnPointer { ldap_memfree(dnPointer) }
            for attribute in attributes {
                guard let values = ldap_get_values_len(ld, current, attribute) else { continue }
                var index = 0
                while let value = values[index] {
                    if let bytes = value.pointee.bv_val {
                        found.append((dn, attribute, Array(UnsafeRawBufferPointer(start: bytes, count: Int(value.pointee.bv_len)))))
                    }
                    index += 1
                }
                ldap_value_free_len(values)
            }
            entry = ldap_next_entry(ld, current)
        }
        return found
    }
}
