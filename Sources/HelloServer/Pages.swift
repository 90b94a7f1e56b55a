/// The two pages of the async book's web server (its `hello.html` and `404.html`).
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
}
