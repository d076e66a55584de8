import ComfyGateRequestParsing
import Testing

@Suite struct RedirectTargetTests {
    @Test(arguments: ["/", "/queue", "/history?max_items=5&offset=0", "/view?filename=a%20b.png&type=output", "/api/", "/a/b/#top",
        "/view?filename=%C3%A9.png"])
    func sameSitePathsAreKept(_ target: String) {
        #expect(RedirectTarget.sanitize(target) == target)
    }

    /// What the WHATWG URL parser (every current browser) reads as another host, once tabs and newlines are
    /// dropped, `\` is read as `/` and dot segments are resolved — and what hides those behind escapes.
    @Test(arguments: [
        "//evil.com", "///evil.com", "/\t/evil.com", "/%09/evil.com", "/\n/evil.com", "/%0a/evil.com", "/%0D%0A/evil.com",
        "/\\evil.com", "\\\\evil.com", "/%5cevil.com", "/%5Cevil.com", "/%2F/evil.com", "/%2f%2fevil.com", "/./", "/.//evil.com",
        "/%2e/%2fevil.com", "/a/../", "/a/..", "/%2e%2e/x", "/a//b", "/%252F%252Fevil.com", "/%25252F/evil.com",
        "https://evil.com", "http:evil.com", "javascript:alert(1)", "evil.com", " /x", "/x ", "/ x", "", "/%", "/%zz",
        "/\u{00A0}/evil.com", "/é", "/x\u{7F}", "/%7F", "/%C2%85/x",
    ])
    func anythingABrowserCouldReadAsAnotherSiteBecomesRoot(_ target: String) {
        #expect(RedirectTarget.sanitize(target) == "/")
        #expect(!RedirectTarget.isSafe(target))
    }

    @Test func missingOrOverlongTargetsBecomeRoot() {
        #expect(RedirectTarget.sanitize(nil) == "/")
        #expect(RedirectTarget.sanitize("/" + String(repeating: "a", count: 5000)) == "/")
    }
}

@Suite struct QueryStringTests {
    @Test func tokenIsRemovedFromAURLWithEverythingElseKept() {
        #expect(QueryString.removing("token", fromURL: "http://h:1/x?a=1&token=s3cret&b=%20#f") == "http://h:1/x?a=1&b=%20#f")
        #expect(QueryString.removing("token", fromURL: "http://h/x?token=s3cret") == "http://h/x")
        #expect(QueryString.removing("token", fromURL: "http://h/x?%74oken=s3cret#frag") == "http://h/x#frag")
        #expect(QueryString.removing("token", fromURL: "http://h/x?tokens=1") == "http://h/x?tokens=1")
        #expect(QueryString.removing("token", fromURL: "http://h/x#?token=1") == "http://h/x#?token=1")
    }

    @Test func valuesAreDecodedAndMalformedEscapesKept() {
        #expect(QueryString.firstValue(of: "token", in: "a=1&token=a+b%2Bc") == "a b+c")
        #expect(QueryString.firstValue(of: "token", in: "token=%zz") == "%zz")
        #expect(QueryString.firstValue(of: "token", in: "x=1") == nil)
    }
}
