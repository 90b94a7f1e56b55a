/// The pages of the async book's web server (its `hello.html` and `404.html`),
/// and the three a real server also needs (a malformed request, one too long,
/// a method it does not serve).
public enum Pages {
    /// `hello.html`: the page for `GET /` and `GET /sleep`.
    public static let hello = """
        <!DOCTYPE html>
        <html lang="en">
          <head>
            <meta charset="utf-8">
            <title>Hello!</title>
          </head>
          <body>
            <h1>Hello!</h1>
            <p>Hi from Weft</p>
          </body>
        </html>

        """

    /// `404.html`: the page for anything else.
    public static let notFound = """
        <!DOCTYPE html>
        <html lang="en">
          <head>
            <meta charset="utf-8">
            <title>Hello!</title>
          </head>
          <body>
            <h1>Oops!</h1>
            <p>Sorry, I don't know what you're asking for.</p>
          </body>
        </html>

        """

    /// The page for a request line that is not one (`400 BAD REQUEST`).
    public static let badRequest = page(title: "Bad request", text: "That was not an HTTP/1.x request line.")

    /// The page for a request line longer than the server takes (`414 URI TOO LONG`).
    public static let uriTooLong = page(title: "URI too long", text: "The request line is longer than the 8 KiB this server reads.")

    /// The page for a method other than GET and HEAD (`405 METHOD NOT ALLOWED`).
    public static let methodNotAllowed = page(title: "Method not allowed", text: "This server answers GET and HEAD.")

    private static func page(title: String, text: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
          <head>
            <meta charset="utf-8">
            <title>\(title)</title>
          </head>
          <body>
            <h1>\(title)</h1>
            <p>\(text)</p>
          </body>
        </html>

        """
    }
}
