import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Testing

/// Inputs found by the fuzz targets in Fuzz/: text that splits differently by `Character` and by byte. A `&`,
/// `;` or `:` next to a combining mark (after it) or a prepended mark (U+0600, before it) is one `Character`
/// with that mark, while HTTP servers, ComfyUI included, split at the byte.
@Suite struct FuzzFindingsTests {
    @Test func aTokenPairAfterAPrependedMarkIsReadAndRemoved() {
        let query = "b=\u{0600}&token=secret"
        #expect(QueryString.firstValue(of: "token", in: query) == "secret")
        #expect(QueryString.removing("token", from: query) == "b=\u{0600}")
        #expect(QueryString.removing("token", fromURL: "/p\u{0600}?token=secret#f") == "/p\u{0600}#f")
        #expect(QueryString.removing("token", fromURL: "/p?a=\u{0600}&token=secret\u{0600}#x") == "/p?a=\u{0600}#x")
    }

    @Test func aCookieEndsAtTheSemicolonBeforeACombiningMark() {
        let headers: HTTPFields = [.cookie: "comfygate_session=abc;\u{301}other=1"]
        #expect(PresentedCredential.cookie(named: "comfygate_session", in: headers) == "abc")
    }

    @Test func theSessionCookieIsRemovedWhereverItIsRead() {
        let header = "other=\u{0600}; comfygate_session=abc"
        #expect(PresentedCredential.cookie(named: "comfygate_session", in: [.cookie: header]) == "abc")
        #expect(PresentedCredential.removingCookie(named: "comfygate_session", from: header) == "other=\u{0600}")
        #expect(PresentedCredential.removingCookie(named: "comfygate_session", from: " comfygate_session=x ;; ") == nil)
        #expect(PresentedCredential.removingCookie(named: "s", from: "s2=1;\ts=2; a=b") == "s2=1; a=b")
    }

    @Test func aBasicPasswordMayStartWithACombiningMark() {
        let basic = "Basic " + Data("user:\u{32D}2b".utf8).base64EncodedString()
        #expect(PresentedCredential(headers: [.authorization: basic], query: nil, cookieName: "s") == .token("\u{32D}2b"))
    }
}
