// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import MIME
import Policy

/// `smime-milter sign`: the milter's decision and signing, offline, on one message.
/// It runs exactly the policy the milter runs, as for mail from the local sendmail command:
/// the envelope sender must be the From address or allowed it by SenderMap.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign one message from standard input as the milter would.",
        discussion: """
            Reads a message on standard input and writes the signed message to standard output \
            (exit 0). When the policy says no, the original is written unchanged and the reason \
            goes to standard error (exit 1). On an error the original is written unchanged too \
            (exit 2).
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: "The envelope sender, as the sendmail command's -f would give it.")
    var from: String

    @Option(help: "Treat the message as submitted by this SASL login instead of the local sendmail command.")
    var saslLogin: String?

    @Option(name: .customLong("rcpt"), help: "An envelope recipient (repeat for several): the EncryptionTable then decides as in the milter (sign, then encrypt).")
    var recipients: [String] = []

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let original = [UInt8](input)
        let setup: LoadedSetup
        do {
            setup = try LoadedSetup.load(configPath: options.config)
        } catch {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let parsed: (fields: [HeaderField], body: [UInt8])
        do {
            parsed = try MessageParser.split(original)
        } catch {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: message cannot be read: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let connection: ConnectionInfo = saslLogin == nil
            ? ConnectionInfo(clientAddress: nil, isNonSMTP: true)
            : ConnectionInfo(clientAddress: nil)
        let message = MessageContext(
            connection: connection, saslLogin: saslLogin, envelopeSender: from, recipients: recipients,
            fields: parsed.fields, body: parsed.body)
        if !recipients.isEmpty, setup.policy.encryption?.policy != nil {
            try decideWithRecipients(setup, message: message, parsed: parsed, original: original, input: input)
            return
        }
        let outcome = setup.signingPolicy.evaluate(message)
        if case .stripped = outcome.decision {
            // A broken client signature removed: the message as the milter would pass it on.
            FileHandle.standardOutput.write(Data(try edited(outcome, parsed, original: original, input: input)))
            let line = MessageLogLine.format(message, outcome: outcome, milliseconds: 0)
            FileHandle.standardError.write(Data("smime-milter: not signed: \(line)\n".utf8))
            throw ExitCode(1)
        }
        guard case .signed = outcome.decision else {
            FileHandle.standardOutput.write(input)
            let line = MessageLogLine.format(message, outcome: outcome, milliseconds: 0)
            FileHandle.standardError.write(Data("smime-milter: not signed: \(line)\n".utf8))
            if case .error = outcome.decision { throw ExitCode(2) }
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data(try edited(outcome, parsed, original: original, input: input)))
    }

    /// With recipients and an EncryptionTable: the milter's whole outbound decision
    /// (`MessagePolicy`, as for mail from the local sendmail command). Exit 0 when the message
    /// was signed or encrypted, 1 when it goes on unchanged (the reason on standard error), 2 on
    /// an error or a refusal (the reply the milter would give on standard error).
    private func decideWithRecipients(_ setup: LoadedSetup, message: MessageContext,
                                      parsed: (fields: [HeaderField], body: [UInt8]), original: [UInt8], input: Data) throws {
        let outcome = setup.policy.evaluate(message, now: Date())
        let line = MessageLogLine.format(message, outcome: outcome, milliseconds: 0)
        if let reply = outcome.action.reply {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: refused (\(reply.code) \(reply.xcode) \(reply.text)): \(line)\n".utf8))
            throw ExitCode(2)
        }
        let encrypted = outcome.details.contains { $0.0 == "encrypted" && $0.1 != "no" }
        var signed = false
        if case .signed = outcome.decision { signed = true }
        guard signed || encrypted else {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: not signed: \(line)\n".utf8))
            if case .error = outcome.decision { throw ExitCode(2) }
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data(try edited(outcome, parsed, original: original, input: input)))
        FileHandle.standardError.write(Data("smime-milter: \(line)\n".utf8))
    }

    /// The message as the MTA would deliver it after the outcome's edits. On a failure (a
    /// replacement body that cannot be read) the original goes out unchanged, exit 2.
    private func edited(_ outcome: PolicyOutcome, _ parsed: (fields: [HeaderField], body: [UInt8]),
                        original: [UInt8], input: Data) throws -> [UInt8] {
        do {
            let edited = try MessageEditor.apply(outcome.edits, fields: parsed.fields, body: parsed.body)
            var bytes = MessageEditor.serialise(fields: edited.fields, body: edited.body)
            // Keep the input's convention: a file with bare LF line ends gets bare LF back.
            if !original.contains(0x0D) { bytes = LineEnds.toLF(bytes) }
            return bytes
        } catch {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
