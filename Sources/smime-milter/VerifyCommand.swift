// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import SMIME

/// `smime-milter verify`: the verifier's result for stored messages, as the milter would write it.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the S/MIME signature of stored messages; exit 0 when every one passes.",
        discussion: """
            Prints one line per file: FILE: smime=RESULT (reason) body.smime-identifier=... \
            body.smime-part=..., the result the milter would write in Authentication-Results \
            (the same policy code: what counts as signed, the From rules, header protection, \
            PartialSignatures from --config). \
            Trust anchors come from --trust, else from the configuration's TrustAnchors. \
            Exit status: 0 when every file passed, 1 otherwise, 2 when the trust anchors, the \
            configuration or a file cannot be read.
            """)

    @OptionGroup var options: VerificationArguments

    func run() throws {
        // With RevocationCheck (from --config), where each certificate's status came from.
        try options.forEachFile(try options.makePolicy(command: "verify")) { report in
            (report.revocation?.certificates ?? []).map { "revocation of \($0.subject): \($0.line)" }
        }
    }
}
