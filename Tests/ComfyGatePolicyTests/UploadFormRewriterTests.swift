import ComfyGatePolicy
import Testing

/// Every body is fed whole and in chunks of 1, 2, 3, 7 and 64 bytes; each chunking must give the same bytes or
/// the same refusal.
@Suite struct UploadFormRewriterTests {
    static let bob = UserSpace(userID: "u1", userName: "Bob")
    static let contentType = "multipart/form-data; boundary=XyZ"

    /// A text part (CRLF line ends) preceded by its delimiter.
    static func part(_ headers: String, _ value: String) -> String {
        "\r\n--XyZ\r\n\(headers)\r\n\r\n\(value)"
    }

    static func field(_ name: String, _ value: String) -> String {
        part("Content-Disposition: form-data; name=\"\(name)\"", value)
    }

    static let imagePart = part(
        "Content-Disposition: form-data; name=\"image\"; filename=\"cat.png\"\r\nContent-Type: image/png",
        "PNGDATA"
    )

    /// A form of the given parts: the first delimiter opens the body without its CRLF.
    static func form(_ parts: String...) -> String {
        parts.joined().droppingBytes(first: 2) + "\r\n--XyZ--\r\n"
    }

    /// The rewritten body, checked to be the same for every chunking.
    static func rewrite(
        _ body: [UInt8],
        contentType: String = contentType,
        ownsFile: @escaping @Sendable (String, String, String) -> Bool = { _, _, _ in false }
    ) -> Result<[UInt8], PolicyRefusal>? {
        var results: [Result<[UInt8], PolicyRefusal>] = []
        for size in [max(body.count, 1), 1, 2, 3, 7, 64] {
            guard var rewriter = UploadFormRewriter(contentType: contentType, space: bob, ownsFile: ownsFile) else {
                return nil
            }
            results.append(
                Result { () throws(PolicyRefusal) -> [UInt8] in
                    var output: [UInt8] = []
                    var start = 0
                    while start < body.count {
                        output += try rewriter.consume(body[start..<min(start + size, body.count)])
                        start += size
                    }
                    return output + (try rewriter.finish())
                })
        }
        #expect(results.allSatisfy { $0 == results[0] }, "chunkings differ")
        return results[0]
    }

    static func rewrite(
        _ body: String, ownsFile: @escaping @Sendable (String, String, String) -> Bool = { _, _, _ in false }
    )
        -> Result<String, PolicyRefusal>?
    {
        rewrite(Array(body.utf8), ownsFile: ownsFile)?.map { String(decoding: $0, as: UTF8.self) }
    }

    static func refusal(
        _ body: String, ownsFile: @escaping @Sendable (String, String, String) -> Bool = { _, _, _ in false }
    )
        -> PolicyRefusal?
    {
        guard case .failure(let refusal) = rewrite(body, ownsFile: ownsFile) else { return nil }
        return refusal
    }

    // MARK: subfolder

    @Test func anExistingSubfolderGoesInsideTheUsersFolder() {
        let body = Self.form(Self.imagePart, Self.field("subfolder", "pasted"), Self.field("overwrite", "true"))
        let expected = Self.form(
            Self.imagePart, Self.field("subfolder", "users/bob/pasted"), Self.field("overwrite", "true"))
        #expect(Self.rewrite(body) == .success(expected))
    }

    @Test(arguments: [
        ("", "users/bob"), (".", "users/bob"), ("a/./b//c/../d/", "users/bob/a/b/d"), ("a/..", "users/bob"),
        ("users/bob", "users/bob/users/bob"), ("é x", "users/bob/é x"),
    ])
    func aSubfolderIsNormalisedLikeNormpath(sent: String, confined: String) {
        let body = Self.form(Self.field("subfolder", sent), Self.imagePart)
        #expect(Self.rewrite(body) == .success(Self.form(Self.field("subfolder", confined), Self.imagePart)))
    }

    @Test func aMissingSubfolderIsAddedBeforeTheClosingBoundary() {
        let body = Self.form(Self.imagePart, Self.field("type", "input"))
        let expected = Self.form(Self.imagePart, Self.field("type", "input"), Self.field("subfolder", "users/bob"))
        #expect(Self.rewrite(body) == .success(expected))
    }

    @Test func aFieldCalledSubfolderInAnotherCaseIsNotTheSubfolder() {
        let body = Self.form(Self.field("Subfolder", "x"), Self.imagePart)
        let expected = Self.form(Self.field("Subfolder", "x"), Self.imagePart, Self.field("subfolder", "users/bob"))
        #expect(Self.rewrite(body) == .success(expected))
    }

    @Test(arguments: ["..", "../other", "a/../../b", "/etc", "/"])
    func aSubfolderThatLeavesTheFolderIsRefused(sent: String) {
        let body = Self.form(Self.imagePart, Self.field("subfolder", sent))
        #expect(Self.refusal(body) == .badRequest("subfolder leaves your folder"))
    }

    @Test func aSubfolderWithABackslashIsRefused() {
        let body = Self.form(Self.imagePart, Self.field("subfolder", "a\\..\\..\\b"))
        #expect(Self.refusal(body) == .badRequest("subfolder may not hold backslashes"))
    }

    @Test func aSubfolderThatIsNotUTF8IsRefused() {
        let body = Array(Self.form(Self.field("subfolder", "\u{1}"), Self.imagePart).utf8).map { $0 == 1 ? 0xFF : $0 }
        #expect(Self.rewrite(body) == .failure(.badRequest("subfolder is not UTF-8 text")))
    }

    @Test func everySubfolderFieldIsRewritten() {
        let body = Self.form(Self.field("subfolder", "a"), Self.imagePart, Self.field("subfolder", "b"))
        let expected = Self.form(
            Self.field("subfolder", "users/bob/a"), Self.imagePart, Self.field("subfolder", "users/bob/b"))
        #expect(Self.rewrite(body) == .success(expected))
    }

    @Test func aSubfolderFieldKeepsItsOwnHeaders() {
        let headers =
            "content-disposition: form-data; name=subfolder\r\nContent-Type: text/plain; charset=UTF-8\r\nX-A: 1"
        let body = Self.form(Self.part(headers, "p"), Self.imagePart)
        #expect(Self.rewrite(body) == .success(Self.form(Self.part(headers, "users/bob/p"), Self.imagePart)))
    }

    // MARK: names as aiohttp reads them

    @Test(arguments: [
        "form-data; name=\"/subfolder\"", "form-data; name=\"\\\\sub\\folder\"", "Form-Data;NAME = subfolder",
        "form-data; filler=\"a;b\"; name=subfolder",
    ])
    func aNameIsReadAsAiohttpReadsIt(disposition: String) {
        let body = Self.form(Self.part("Content-Disposition: \(disposition)", "p"), Self.imagePart)
        #expect(
            Self.rewrite(body)
                == .success(Self.form(Self.part("Content-Disposition: \(disposition)", "users/bob/p"), Self.imagePart)))
    }

    @Test(arguments: [
        "form-data; name*=utf-8''subfolder", "form-data; name*0=sub; name*1=folder",
        "form-data; name=a; name=subfolder",
        "form-data; name=\"subfolder\" ; x=1", "form-data ; name=subfolder", "form-data; name=sub folder",
        "form-data; name",
        "form-data; na me=x; name=subfolder", "attachment; name=subfolder",
    ])
    func aDispositionAiohttpMightReadOtherwiseIsRefused(disposition: String) {
        let body = Self.form(Self.part("Content-Disposition: \(disposition)", "p"), Self.imagePart)
        #expect(Self.refusal(body)?.status == 400)
    }

    @Test(arguments: [
        "Content-Disposition: form-data; name=subfolder; filename=\"\"",
        "Content-Disposition: form-data; name=subfolder; filename*=utf-8''x",
        "Content-Disposition: form-data; name=subfolder\r\nContent-Transfer-Encoding: base64",
        "Content-Disposition: form-data; name=subfolder\r\nContent-Encoding: gzip",
        "Content-Disposition: form-data; name=subfolder\r\nContent-Length: 1",
        "Content-Disposition: form-data; name=subfolder\r\nContent-Type: text/plain; charset=utf-16",
        "Content-Disposition: form-data; name=subfolder\r\nContent-Type: application/octet-stream",
        "Content-Disposition: form-data; name=original_ref; filename=r.json",
    ])
    func aGuardedFieldMustBePlainText(headers: String) {
        let body = Self.form(Self.part(headers, "p"), Self.imagePart)
        #expect(Self.refusal(body)?.message.hasSuffix("field must be plain UTF-8 text") == true)
    }

    // MARK: file names

    @Test(arguments: [
        "filename=\"../x.png\"", "filename=\"a/b.png\"", "filename=\"a\\\\b.png\"", "filename=..",
        "filename*=UTF-8''..%2Fx.png", "filename*=''%5Cx", "filename=x.png; filename*=utf-8''%2E%2E",
    ])
    func aFileNameThatNamesAFolderIsRefused(parameter: String) {
        let body = Self.form(Self.part("Content-Disposition: form-data; name=image; \(parameter)", "data"))
        #expect(Self.refusal(body) == .badRequest("an uploaded file's name names a folder"))
    }

    @Test func aFileNameInAnotherCharsetOrContinuedIsRefused() {
        for parameter in ["filename*=utf-7''%2BAC8-", "filename*0=a; filename*1=b"] {
            let body = Self.form(Self.part("Content-Disposition: form-data; name=image; \(parameter)", "data"))
            #expect(Self.refusal(body)?.status == 400)
        }
    }

    @Test(arguments: [
        "filename=\"my cat (1).png\"", "filename*=utf-8''caf%C3%A9.png", "filename=\"/x.png\"",
        "filename=x; filename*=bad",
    ])
    func aPlainFileNamePasses(parameter: String) {
        let image = Self.part("Content-Disposition: form-data; name=image; \(parameter)", "data")
        #expect(Self.rewrite(Self.form(image)) == .success(Self.form(image, Self.field("subfolder", "users/bob"))))
    }

    // MARK: file contents

    @Test func fileContentPassesByteForByte() {
        let awkward: [[UInt8]] = [
            Array("\r\n--XyZ".utf8).dropLast().map { $0 }, Array("--XyZ\r\n".utf8), Array("\r\n--".utf8),
            Array("\r\r\n--Xy".utf8),
            Array("\n--XyZ\r\n".utf8), Array("\r\n-XyZ--".utf8), Array(0...255), [13], [13, 10], [13, 10, 45],
        ]
        let content = awkward.flatMap { $0 + [0] } + Array("\r\n--Xy".utf8)
        let head = Array("--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"b.bin\"\r\n\r\n".utf8)
        let tail = Array("\r\n--XyZ--".utf8)
        let inserted = Array("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"subfolder\"\r\n\r\nusers/bob".utf8)
        #expect(Self.rewrite(head + content + tail) == .success(head + content + inserted + tail))
    }

    @Test func thePreambleEpilogueAndPaddingPassThrough() {
        let body =
            "preamble --XyZ\r\n\r\n--XyZ \t\r\n" + Self.imagePart.droppingBytes(first: 9)
            + "\r\n--XyZ-- \r\nepilogue\r\n--XyZ\r\n"
        let expected =
            "preamble --XyZ\r\n\r\n--XyZ \t\r\n" + Self.imagePart.droppingBytes(first: 9)
            + Self.field("subfolder", "users/bob")
            + "\r\n--XyZ-- \r\nepilogue\r\n--XyZ\r\n"
        #expect(Self.rewrite(body) == .success(expected))
    }

    // MARK: original_ref

    static func maskForm(_ reference: String) -> String {
        form(field("original_ref", reference), imagePart, field("type", "input"))
    }

    @Test(arguments: [
        #"{"filename":"a.png","subfolder":"users/bob/clipspace","type":"input"}"#,
        #"{"filename":"users/bob/a.png [input]","subfolder":""}"#, #" {"subfolder":"users","filename":"bob/a.png"} "#,
    ])
    func anOriginalRefInTheUsersFolderPasses(reference: String) {
        #expect(Self.rewrite(Self.maskForm(reference)) == .success(Self.maskForm(reference).replacingInsertion()))
    }

    @Test func anOriginalRefTheUserOwnsElsewherePasses() {
        let reference = #"{"filename":"ComfyUI_temp_abcde_00001_.png","subfolder":"","type":"temp"}"#
        let owns: @Sendable (String, String, String) -> Bool = {
            $0 == "temp" && $1 == "" && $2 == "ComfyUI_temp_abcde_00001_.png"
        }
        #expect(
            Self.rewrite(Self.maskForm(reference), ownsFile: owns)
                == .success(Self.maskForm(reference).replacingInsertion()))
        let annotated = #"{"filename":"x/y.png [temp]","type":"input"}"#
        let ownsAnnotated: @Sendable (String, String, String) -> Bool = { $0 == "temp" && $1 == "x" && $2 == "y.png" }
        #expect(
            Self.rewrite(Self.maskForm(annotated), ownsFile: ownsAnnotated)
                == .success(Self.maskForm(annotated).replacingInsertion()))
    }

    @Test(arguments: [
        #"{"filename":"a.png","subfolder":"users/alice","type":"input"}"#,
        #"{"filename":"users/alice/a.png","subfolder":""}"#, #"{"filename":"../alice/a.png","subfolder":"users/bob"}"#,
        #"{"filename":"a.png","subfolder":"/work/input/users/bob"}"#,
        #"{"filename":"a.png","subfolder":"users/bob\\..\\alice"}"#,
        #"{"filename":"a.png","subfolder":"users/bob/\ud800"}"#,
        #"{"filename":"a.png","subfolder":"users/bob","subfolder":"users/alice"}"#,
    ])
    func anOriginalRefToSomeoneElsesFileIsRefused(reference: String) {
        #expect(Self.refusal(Self.maskForm(reference)) == .forbidden("original_ref names a file that is not yours"))
    }

    @Test(arguments: [
        "not json", #"["a.png"]"#, #"{"subfolder":"users/bob"}"#, #"{"filename":1}"#,
        #"{"filename":"a.png","subfolder":"users/bob","type":"models"}"#, #"{"filename":"a.png","subfolder":null}"#,
    ])
    func anOriginalRefThatIsNotAFileReferenceIsRefused(reference: String) {
        #expect(Self.refusal(Self.maskForm(reference))?.status == 400)
    }

    // MARK: limits and malformed forms

    @Test func aGuardedValueIsLimitedTo4KiB() {
        let longest = String(repeating: "a", count: UploadFormRewriter.maximumFieldValueLength - 10)
        #expect((try? Self.rewrite(Self.form(Self.field("subfolder", longest)))?.get()) != nil)
        let tooLong = Self.form(Self.field("subfolder", longest + String(repeating: "a", count: 11)))
        #expect(Self.refusal(tooLong) == .badRequest("a subfolder or original_ref field is longer than 4096 bytes"))
    }

    @Test func partHeadersAreLimitedTo16KiB() {
        let filler = "X-Filler: " + String(repeating: "f", count: UploadFormRewriter.maximumPartHeaderLength)
        let body = Self.form(Self.part("Content-Disposition: form-data; name=a\r\n" + filler, "1"))
        #expect(Self.refusal(body) == .badRequest("a part's headers are longer than 16384 bytes"))
    }

    @Test(arguments: [
        ("", "the form has no boundary line"), ("--XyZ--\r\n", "the form has no parts"),
        (form(imagePart).droppingBytes(last: 9), "the form ends without its closing boundary"),
        ("--XyZ\r\nContent-Disposition: form-data; name=a\r\n", "the form ends inside a part's headers"),
        ("--XyZ\r\nContent-Disposition: form-data; name=a\r\n--XyZ--", "the form ends inside a part's headers"),
        ("--XyZ", "the form ends inside a boundary line"),
        (
            "--XyZ\r\nContent-Disposition: form-data; name=a\n\nx\r\n--XyZ--",
            "a part's headers hold a line feed without a carriage return"
        ),
        (
            "--XyZ\r\nContent-Disposition: form-data; name=a\rX\r\n\r\nx\r\n--XyZ--",
            "a part's headers hold a carriage return without a line feed"
        ),
        ("--XyZx\r\n", "a boundary line of the form holds more than the boundary"),
        ("--XyZ\n", "a boundary line of the form holds more than the boundary"),
        (
            form(imagePart).replacingOccurrences("--XyZ--", "--XyZ-"),
            "a boundary line of the form holds more than the boundary"
        ),
        ("--XyZ\r\nX-A: 1\r\n\r\nx\r\n--XyZ--", "a form part has no Content-Disposition header"),
        ("--XyZ\r\n\r\nx\r\n--XyZ--", "a form part has no Content-Disposition header"),
        ("--XyZ\r\nContent-Disposition: form-data; filename=a\r\n\r\nx\r\n--XyZ--", "a form part has no name"),
        (
            "--XyZ\r\nContent-Disposition: form-data;\r\n name=subfolder\r\n\r\nx\r\n--XyZ--",
            "a part's header is folded over two lines"
        ),
        (
            "--XyZ\r\nContent-Disposition : form-data; name=a\r\n\r\nx\r\n--XyZ--",
            "a part's header is not a name and a value"
        ),
        (
            "--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
                + "Content-Disposition: form-data; name=subfolder\r\n\r\nx\r\n--XyZ--",
            "a part has two Content-Disposition headers"
        ),
    ])
    func aMalformedFormIsRefused(body: String, reason: String) {
        #expect(Self.refusal(body) == .badRequest(reason))
    }

    @Test func aRefusalStaysARefusal() throws {
        var rewriter = try #require(
            UploadFormRewriter(contentType: Self.contentType, space: Self.bob) { _, _, _ in true })
        #expect(throws: PolicyRefusal.badRequest("the form has no parts")) {
            try rewriter.consume(Array("--XyZ--\r\n".utf8))
        }
        #expect(throws: PolicyRefusal.badRequest("the form has no parts")) { try rewriter.consume(Array("x".utf8)) }
        #expect(throws: PolicyRefusal.badRequest("the form has no parts")) { try rewriter.finish() }
    }

    // MARK: content types

    @Test(arguments: [
        "multipart/form-data; boundary=XyZ", "Multipart/Form-Data ; BOUNDARY = \"XyZ\"",
        "multipart/form-data; charset=utf-8; boundary=XyZ;", "multipart/form-data; boundary=\"a b\"",
        "multipart/form-data; boundary=\(String(repeating: "b", count: 70))",
    ])
    func aMultipartContentTypeIsAccepted(contentType: String) {
        #expect(UploadFormRewriter(contentType: contentType, space: Self.bob) { _, _, _ in false } != nil)
    }

    @Test func theBoundaryComesFromTheContentType() {
        let body = Array(Self.form(Self.imagePart).replacingOccurrences("XyZ", "a b").utf8)
        let expected = Array(
            Self.form(Self.imagePart, Self.field("subfolder", "users/bob")).replacingOccurrences("XyZ", "a b").utf8)
        #expect(Self.rewrite(body, contentType: "multipart/form-data; boundary=\"a b\"") == .success(expected))
    }

    @Test(arguments: [
        "application/json", "application/x-www-form-urlencoded", "multipart/mixed; boundary=XyZ", "multipart/form-data",
        "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\(String(repeating: "b", count: 71))",
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data; boundary; boundary=b", "multipart/form-data; x=\"; boundary=a\"; boundary=b",
        "multipart/form-data; boundary=\" a\"", "multipart/form-data; boundary=\"a \"",
        "multipart/form-data; boundary=a b",
        "multipart/form-data; boundary=a\"b", "multipart/form-data; boundary=\u{0B}a",
        "multipart/form-data; boundary=é",
    ])
    func aContentTypeWithoutAUsableBoundaryGivesNil(contentType: String) {
        #expect(UploadFormRewriter(contentType: contentType, space: Self.bob) { _, _, _ in false } == nil)
    }
}

extension String {
    fileprivate func droppingBytes(first: Int = 0, last: Int = 0) -> String {
        String(decoding: utf8.dropFirst(first).dropLast(last), as: UTF8.self)
    }

    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }

    /// A mask form as rewritten: the user's folder added as the `subfolder` it lacks.
    fileprivate func replacingInsertion() -> String {
        droppingBytes(last: 11) + UploadFormRewriterTests.field("subfolder", "users/bob") + "\r\n--XyZ--\r\n"
    }
}
