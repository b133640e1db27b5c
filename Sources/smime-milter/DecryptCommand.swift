// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import MIME
import Policy

/// `smime-milter decrypt`: one inbound message through the same decision as the milter
/// (DecryptionTable, keys, verification), printed as it would be delivered.
struct DecryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt and verify one inbound message from standard input as the milter would.",
        discussion: """
            Reads a message on standard input and writes it as the milter would deliver it to \
            the recipients (exit 0; the decision goes to standard error). When the milter would \
            refuse it (OnDecryptionError tempfail or reject), the original is written and the \
            exit status is 1; on an error, 2.
            """)

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("rcpt"), help: "An envelope recipient (repeat for several).")
    var recipients: [String]

    @Option(help: "The envelope sender.")
    var from: String = "<>"

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let original = [UInt8](input)
        let setup: LoadedSetup
        let parsed: (fields: [HeaderField], body: [UInt8])
        do {
            setup = try LoadedSetup.load(configPath: options.config)
            parsed = try MessageParser.split(original)
        } catch {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // From outside (TEST-NET-1, never an internal host): the inbound path.
        let message = MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.1"), envelopeSender: from,
                                     recipients: recipients, fields: parsed.fields, body: parsed.body)
        let outcome = setup.policy.evaluate(message, now: Date())
        let line = MessageLogLine.format(message, outcome: outcome, milliseconds: 0)
        if let reply = outcome.action.reply {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: refused (\(reply.code) \(reply.xcode) \(reply.text)): \(line)\n".utf8))
            throw ExitCode(1)
        }
        do {
            let edited = try MessageEditor.apply(outcome.edits, fields: parsed.fields, body: parsed.body)
            var bytes = MessageEditor.serialise(fields: edited.fields, body: edited.body)
            if !original.contains(0x0D) { bytes = LineEnds.toLF(bytes) }
            FileHandle.standardOutput.write(Data(bytes))
        } catch {
            FileHandle.standardOutput.write(input)
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(2)
        }
        FileHandle.standardError.write(Data("smime-milter: \(line)\n".utf8))
    }
}
