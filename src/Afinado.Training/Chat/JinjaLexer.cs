using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Afinado.Training.Chat;

internal enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Value, int Line, object? Literal = null)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;
    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;

    public string Describe() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.VariableEnd => "end of print statement ('}}')",
        TokenKind.BlockEnd => "end of statement block ('%}')",
        TokenKind.Text => "template text",
        _ => $"'{Value}'",
    };
}

/// <summary>A syntax error in a template, with its line.</summary>
internal sealed class TemplateSyntaxError : Exception
{
    public TemplateSyntaxError(string message, int line) : base(message) => Line = line;
    public int Line { get; }
}

/// <summary>
/// Splits a template into text and tag tokens as Jinja2's lexer does in the environment transformers renders chat
/// templates with (<c>trim_blocks=True, lstrip_blocks=True</c>, <c>keep_trailing_newline=False</c>):
/// <list type="bullet">
/// <item>newlines are normalised to \n and one trailing newline of the template is dropped;</item>
/// <item><c>{%-</c>, <c>{{-</c>, <c>{#-</c> strip all white space before the tag; <c>-%}</c>, <c>-}}</c>, <c>-#}</c> all after it;</item>
/// <item>lstrip_blocks: spaces and tabs between a line's start and a <c>{%</c> or <c>{#</c> tag (not <c>{{</c>) are
/// removed, unless the tag opens with <c>{%+</c>;</item>
/// <item>trim_blocks: the first newline after <c>%}</c> or <c>#}</c> is removed, unless the tag closes with <c>+%}</c>.</item>
/// </list>
/// </summary>
internal static class JinjaLexer
{
    private static readonly string[] Operators = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];
    private static readonly Regex RawBegin = new(@"\G\{%[-+]?\s*raw\s*(?:-%\}\s*|%\})", RegexOptions.CultureInvariant);
    private static readonly Regex RawEnd = new(@"\{%([-+]?)\s*endraw\s*(\+%\}|-%\}\s*|%\}\n?)", RegexOptions.CultureInvariant);
    private static readonly Regex FloatLiteral = new(@"\G(\d+_)*\d+((\.(\d+_)*\d+)?[eE][+\-]?(\d+_)*\d+|\.(\d+_)*\d+)", RegexOptions.CultureInvariant);
    private static readonly Regex IntegerLiteral = new(@"\G(0[bB](_?[01])+|0[oO](_?[0-7])+|0[xX](_?[0-9a-fA-F])+|[1-9](_?\d)*|0(_?0)*)", RegexOptions.CultureInvariant);

    public static List<Token> Tokenize(string template)
    {
        string src = Normalize(template);
        var tokens = new List<Token>();
        int pos = 0, line = 1;
        bool lineStarting = true;
        while (pos < src.Length)
        {
            int tag = NextTag(src, pos);
            if (tag < 0)
            {
                tokens.Add(new Token(TokenKind.Text, src[pos..], line));
                break;
            }
            char kind = src[tag + 1];
            char sign = tag + 2 < src.Length && src[tag + 2] is '-' or '+' ? src[tag + 2] : '\0';
            string text = src[pos..tag];
            if (sign == '-') text = RStrip(text);
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: only white space between the last newline (or the line start) and the tag.
                int l = text.LastIndexOf('\n') + 1;
                if ((l > 0 || lineStarting) && l < text.Length && AllSpace(text, l)) text = text[..l];
            }
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
            line += Count(src, pos, tag);
            pos = tag;

            if (kind == '%' && RawBegin.Match(src, pos) is { Success: true } raw)
            {
                line += Count(src, pos, pos + raw.Length);
                pos = LexRaw(src, pos + raw.Length, tokens, ref line);
            }
            else if (kind == '#') pos = SkipComment(src, pos, ref line);
            else pos = LexTag(src, pos, kind == '%', tokens, ref line);
            lineStarting = pos > 0 && src[pos - 1] == '\n';
        }
        tokens.Add(new Token(TokenKind.End, "", line));
        return tokens;
    }

    private static string Normalize(string template)
    {
        string src = template.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return src.EndsWith('\n') ? src[..^1] : src;
    }

    private static int NextTag(string src, int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
            if (src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>Python's str.rstrip(): what a <c>{%-</c> tag removes before itself.</summary>
    private static string RStrip(string text)
    {
        int end = text.Length;
        while (end > 0 && Py.IsSpace(text[end - 1])) end--;
        return text[..end];
    }

    private static bool AllSpace(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
            if (!Py.IsSpace(text[i])) return false;
        return true;
    }

    private static int Count(string src, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++)
            if (src[i] == '\n') n++;
        return n;
    }

    private static int SkipSpace(string src, int pos, ref int line)
    {
        while (pos < src.Length && Py.IsSpace(src[pos]))
        {
            if (src[pos] == '\n') line++;
            pos++;
        }
        return pos;
    }

    private static int SkipComment(string src, int pos, ref int line)
    {
        int startLine = line;
        int bodyStart = pos + 2 + (pos + 2 < src.Length && src[pos + 2] is '-' or '+' ? 1 : 0);
        int end = src.IndexOf("#}", bodyStart, StringComparison.Ordinal);
        if (end < 0) throw new TemplateSyntaxError("missing end of comment tag", startLine);
        line += Count(src, pos, end + 2);
        char sign = end > bodyStart ? src[end - 1] : '\0';
        pos = end + 2;
        if (sign == '-') return SkipSpace(src, pos, ref line);
        if (sign != '+' && pos < src.Length && src[pos] == '\n')
        {
            line++;
            pos++;
        }
        return pos;
    }

    /// <summary>The body of <c>{% raw %}...{% endraw %}</c> is text, with the endraw tag's own white space control.</summary>
    private static int LexRaw(string src, int pos, List<Token> tokens, ref int line)
    {
        var end = RawEnd.Match(src, pos);
        if (!end.Success) throw new TemplateSyntaxError("missing end of raw directive", line);
        string text = src[pos..end.Index];
        string sign = end.Groups[1].Value;
        if (sign == "-") text = RStrip(text);
        else if (sign != "+")
        {
            int l = text.LastIndexOf('\n') + 1;
            if (l > 0 && l < text.Length && AllSpace(text, l)) text = text[..l];
        }
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
        line += Count(src, pos, end.Index + end.Length);
        return end.Index + end.Length;
    }

    private static int LexTag(string src, int pos, bool block, List<Token> tokens, ref int line)
    {
        int startLine = line;
        tokens.Add(new Token(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", line));
        pos += 2;
        if (pos < src.Length && src[pos] is '-' or '+') pos++;
        var brackets = new Stack<char>();
        while (true)
        {
            if (pos >= src.Length)
                throw new TemplateSyntaxError($"unexpected end of template, expected '{(block ? "%}" : "}}")}' to close the tag opened", startLine);
            if (brackets.Count == 0)
            {
                // Jinja2 tries the tag's end before anything else, so "-%}" is a closing tag, never a minus.
                if (block)
                {
                    if (At(src, pos, "-%}"))
                    {
                        tokens.Add(new Token(TokenKind.BlockEnd, "%}", line));
                        return SkipSpace(src, pos + 3, ref line);
                    }
                    if (At(src, pos, "+%}"))
                    {
                        tokens.Add(new Token(TokenKind.BlockEnd, "%}", line));
                        return pos + 3;
                    }
                    if (At(src, pos, "%}"))
                    {
                        tokens.Add(new Token(TokenKind.BlockEnd, "%}", line));
                        pos += 2;
                        if (pos < src.Length && src[pos] == '\n')
                        {
                            line++;
                            pos++;
                        }
                        return pos;
                    }
                }
                else
                {
                    if (At(src, pos, "-}}"))
                    {
                        tokens.Add(new Token(TokenKind.VariableEnd, "}}", line));
                        return SkipSpace(src, pos + 3, ref line);
                    }
                    if (At(src, pos, "}}"))
                    {
                        tokens.Add(new Token(TokenKind.VariableEnd, "}}", line));
                        return pos + 2;
                    }
                }
            }
            char c = src[pos];
            if (Py.IsSpace(c))
            {
                pos = SkipSpace(src, pos, ref line);
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                bool afterDot = tokens.Count > 0 && tokens[^1].IsOperator(".");
                var f = afterDot ? Match.Empty : FloatLiteral.Match(src, pos);
                if (f.Success)
                {
                    string text = f.Value.Replace("_", "", StringComparison.Ordinal);
                    tokens.Add(new Token(TokenKind.Float, f.Value, line, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)));
                    pos += f.Length;
                    continue;
                }
                var m = IntegerLiteral.Match(src, pos);
                tokens.Add(new Token(TokenKind.Integer, m.Value, line, ParseInteger(m.Value, line)));
                pos += m.Length;
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < src.Length && (char.IsLetterOrDigit(src[pos]) || src[pos] == '_')) pos++;
                tokens.Add(new Token(TokenKind.Name, src[start..pos], line));
                continue;
            }
            if (c is '\'' or '"')
            {
                int tokenLine = line;
                pos = LexString(src, pos, out string value, ref line);
                tokens.Add(new Token(TokenKind.String, value, tokenLine, value));
                continue;
            }
            string? op = Operators.FirstOrDefault(o => At(src, pos, o));
            if (op is null) throw new TemplateSyntaxError($"unexpected char '{c}'", line);
            if (op is "(" or "[" or "{") brackets.Push(op[0]);
            else if (op is ")" or "]" or "}")
            {
                char open = op == ")" ? '(' : op == "]" ? '[' : '{';
                if (brackets.Count == 0 || brackets.Pop() != open) throw new TemplateSyntaxError($"unexpected '{op}'", line);
            }
            tokens.Add(new Token(TokenKind.Operator, op, line));
            pos += op.Length;
        }
    }

    private static bool At(string src, int pos, string s) => pos + s.Length <= src.Length && string.CompareOrdinal(src, pos, s, 0, s.Length) == 0;

    private static long ParseInteger(string text, int line)
    {
        string digits = text.Replace("_", "", StringComparison.Ordinal);
        try
        {
            if (digits.Length > 2 && digits[0] == '0' && char.IsLetter(digits[1]))
            {
                int radix = char.ToLowerInvariant(digits[1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
                return Convert.ToInt64(digits[2..], radix);
            }
            return long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (OverflowException)
        {
            throw new TemplateSyntaxError($"integer literal {text} is beyond 64 bits", line);
        }
    }

    /// <summary>A quoted string with Python's escapes (Jinja2 decodes literals with unicode-escape): \n \t \r \\ \' \"
    /// \a \b \f \v, octal \ooo, \xhh, \uhhhh, \Uhhhhhhhh, a backslash-newline joins lines, unknown escapes stay as written.</summary>
    private static int LexString(string src, int pos, out string value, ref int line)
    {
        char quote = src[pos++];
        int startLine = line;
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= src.Length) throw new TemplateSyntaxError("unexpected end of template inside a string literal", startLine);
            char c = src[pos++];
            if (c == quote) break;
            if (c == '\n') line++;
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }
            if (pos >= src.Length) throw new TemplateSyntaxError("unexpected end of template inside a string literal", startLine);
            char e = src[pos++];
            switch (e)
            {
                case '\n': line++; break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': sb.Append(HexEscape(src, ref pos, 2, line)); break;
                case 'u': sb.Append(HexEscape(src, ref pos, 4, line)); break;
                case 'U': sb.Append(HexEscape(src, ref pos, 8, line)); break;
                case >= '0' and <= '7':
                    int code = e - '0';
                    for (int k = 0; k < 2 && pos < src.Length && src[pos] is >= '0' and <= '7'; k++) code = code * 8 + (src[pos++] - '0');
                    sb.Append((char)code);
                    break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        value = sb.ToString();
        return pos;
    }

    private static string HexEscape(string src, ref int pos, int length, int line)
    {
        if (pos + length > src.Length || !int.TryParse(src.AsSpan(pos, length), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || code < 0 || code > 0x10FFFF)
            throw new TemplateSyntaxError($"truncated or invalid \\{(length == 2 ? 'x' : length == 4 ? 'u' : 'U')} escape in a string literal", line);
        pos += length;
        // Python keeps a lone surrogate escape as that code unit; every other code point is one character.
        return code is >= 0xD800 and <= 0xDFFF ? ((char)code).ToString() : char.ConvertFromUtf32(code);
    }
}
