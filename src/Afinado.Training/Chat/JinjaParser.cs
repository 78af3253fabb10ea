namespace Afinado.Training.Chat;

/// <summary>
/// Builds the statement tree from the lexer's tokens with Jinja2's grammar and operator precedence (loosest first):
/// <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons / <c>in</c> / <c>not in</c>, <c>+ -</c>,
/// <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then filters <c>|f</c> and tests <c>is t</c>, which bind
/// tighter than any operator (<c>messages|length - 1</c> is <c>(messages|length) - 1</c>).
/// </summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> Unsupported = new(StringComparer.Ordinal)
    {
        "macro", "call", "filter", "with", "include", "import", "from", "extends", "block", "autoescape", "do",
    };

    private readonly List<Token> _tokens;
    private int _pos;
    private int _depth;
    private int _loops;

    private JinjaParser(List<Token> tokens) => _tokens = tokens;

    public static List<Stmt> Parse(string template)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(template));
        var body = parser.ParseBody([]);
        var end = parser.Current;
        if (end.Kind != TokenKind.End) throw new TemplateSyntaxError($"unexpected {end.Describe()}", end.Line);
        return body;
    }

    private Token Current => _tokens[_pos];
    private Token Peek(int ahead = 1) => _tokens[Math.Min(_pos + ahead, _tokens.Count - 1)];
    private Token Next() => _tokens[_pos++];

    private Token Expect(TokenKind kind, string? value = null)
    {
        var t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
        {
            string wanted = value is not null ? $"'{value}'" : kind switch
            {
                TokenKind.Name => "a name",
                TokenKind.BlockEnd => "'%}'",
                TokenKind.VariableEnd => "'}}'",
                _ => kind.ToString(),
            };
            throw new TemplateSyntaxError($"expected {wanted}, got {t.Describe()}", t.Line);
        }
        _pos++;
        return t;
    }

    private void Enter(int line)
    {
        if (++_depth > JinjaLimits.MaxDepth) throw new TemplateSyntaxError("template nested too deeply", line);
    }

    /// <summary>Statements up to a block tag named in <paramref name="ends"/> (left unread) or the end of the template.</summary>
    private List<Stmt> ParseBody(string[] ends)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.End:
                    if (ends.Length > 0)
                        throw new TemplateSyntaxError($"unexpected end of template: a block is still open, expected {string.Join(" or ", ends.Select(e => $"'{e}'"))}", t.Line);
                    return body;
                case TokenKind.Text:
                    body.Add(new TextStmt(t.Value, t.Line));
                    _pos++;
                    break;
                case TokenKind.VariableBegin:
                    _pos++;
                    var value = ParseTuple(withCondexpr: true);
                    Expect(TokenKind.VariableEnd);
                    body.Add(new OutputStmt(value, t.Line));
                    break;
                case TokenKind.BlockBegin:
                    var name = Peek();
                    if (name.Kind == TokenKind.Name && ends.Contains(name.Value)) return body;
                    _pos++;
                    body.Add(ParseStatement());
                    break;
                default:
                    throw new TemplateSyntaxError($"unexpected {t.Describe()}", t.Line);
            }
        }
    }

    private Stmt ParseStatement()
    {
        var t = Current;
        if (t.Kind != TokenKind.Name) throw new TemplateSyntaxError($"expected a tag name, got {t.Describe()}", t.Line);
        Enter(t.Line);
        try
        {
            switch (t.Value)
            {
                case "if": return ParseIf();
                case "for": return ParseFor();
                case "set": return ParseSet();
                case "generation":
                    _pos++;
                    Expect(TokenKind.BlockEnd);
                    var body = ParseBody(["endgeneration"]);
                    EndTag("endgeneration");
                    return new GenerationStmt(body, t.Line);
                case "break":
                case "continue":
                    _pos++;
                    if (_loops == 0) throw new TemplateSyntaxError($"'{t.Value}' outside of a loop", t.Line);
                    Expect(TokenKind.BlockEnd);
                    return t.Value == "break" ? new BreakStmt(t.Line) : new ContinueStmt(t.Line);
            }
            if (Unsupported.Contains(t.Value))
                throw new TemplateSyntaxError($"the '{t.Value}' tag is outside the Jinja subset Afinado renders chat templates with", t.Line);
            throw new TemplateSyntaxError($"unknown tag '{t.Value}'", t.Line);
        }
        finally { _depth--; }
    }

    private void EndTag(string name)
    {
        Expect(TokenKind.BlockBegin);
        Expect(TokenKind.Name, name);
        Expect(TokenKind.BlockEnd);
    }

    private IfStmt ParseIf()
    {
        int line = Next().Line;
        var branches = new List<(Expr, List<Stmt>)>();
        var test = ParseTuple(withCondexpr: true);
        Expect(TokenKind.BlockEnd);
        branches.Add((test, ParseBody(["elif", "else", "endif"])));
        List<Stmt>? otherwise = null;
        while (true)
        {
            Expect(TokenKind.BlockBegin);
            var tag = Expect(TokenKind.Name);
            if (tag.Value == "elif")
            {
                var cond = ParseTuple(withCondexpr: true);
                Expect(TokenKind.BlockEnd);
                branches.Add((cond, ParseBody(["elif", "else", "endif"])));
            }
            else if (tag.Value == "else")
            {
                Expect(TokenKind.BlockEnd);
                otherwise = ParseBody(["endif"]);
                EndTag("endif");
                break;
            }
            else
            {
                Expect(TokenKind.BlockEnd);
                break;
            }
        }
        return new IfStmt(branches, otherwise, line);
    }

    private ForStmt ParseFor()
    {
        int line = Next().Line;
        var target = ParseTarget(allowAttribute: false);
        Expect(TokenKind.Name, "in");
        var iterable = ParseTuple(withCondexpr: false);
        Expr? filter = null;
        if (Current.IsName("if"))
        {
            _pos++;
            filter = ParseExpression(withCondexpr: true);
        }
        if (Current.IsName("recursive"))
            throw new TemplateSyntaxError("recursive for loops are outside the Jinja subset Afinado renders chat templates with", Current.Line);
        Expect(TokenKind.BlockEnd);
        _loops++;
        List<Stmt> body;
        try { body = ParseBody(["else", "endfor"]); }
        finally { _loops--; }
        List<Stmt>? otherwise = null;
        Expect(TokenKind.BlockBegin);
        if (Expect(TokenKind.Name).Value == "else")
        {
            Expect(TokenKind.BlockEnd);
            otherwise = ParseBody(["endfor"]);
            EndTag("endfor");
        }
        else Expect(TokenKind.BlockEnd);
        return new ForStmt(target, iterable, filter, body, otherwise, line);
    }

    private Stmt ParseSet()
    {
        int line = Next().Line;
        var target = ParseTarget(allowAttribute: true);
        if (Current.IsOperator("="))
        {
            _pos++;
            var value = ParseTuple(withCondexpr: true);
            Expect(TokenKind.BlockEnd);
            return new SetStmt(target, value, line);
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endset"]);
        EndTag("endset");
        return new SetBlockStmt(target, body, line);
    }

    private Target ParseTarget(bool allowAttribute)
    {
        int line = Current.Line;
        var items = new List<Target>();
        bool parenthesised = Current.IsOperator("(");
        if (parenthesised) _pos++;
        while (true)
        {
            var name = Expect(TokenKind.Name);
            if (allowAttribute && Current.IsOperator("."))
            {
                _pos++;
                items.Add(new AttributeTarget(name.Value, Expect(TokenKind.Name).Value, name.Line));
            }
            else items.Add(new NameTarget(name.Value, name.Line));
            if (!Current.IsOperator(",")) break;
            _pos++;
        }
        if (parenthesised) Expect(TokenKind.Operator, ")");
        return items.Count == 1 && !parenthesised ? items[0] : new TupleTarget(items, line);
    }

    /// <summary>An expression, or several separated by commas (a tuple, kept as a list).</summary>
    private Expr ParseTuple(bool withCondexpr)
    {
        int line = Current.Line;
        var first = ParseExpression(withCondexpr);
        if (!Current.IsOperator(",")) return first;
        var items = new List<Expr> { first };
        while (Current.IsOperator(","))
        {
            _pos++;
            if (EndsTuple(Current)) break;
            items.Add(ParseExpression(withCondexpr));
        }
        return new ListExpr(items, line, IsTuple: true);
    }

    private static bool EndsTuple(Token t) =>
        t.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || t.IsOperator(")") || t.IsName("if") || t.IsName("recursive");

    private Expr ParseExpression(bool withCondexpr = true)
    {
        Enter(Current.Line);
        try
        {
            if (!withCondexpr) return ParseOr();
            var expr = ParseOr();
            while (Current.IsName("if"))
            {
                int line = Next().Line;
                var test = ParseOr();
                Expr? otherwise = null;
                if (Current.IsName("else"))
                {
                    _pos++;
                    otherwise = ParseExpression();
                }
                expr = new CondExpr(test, expr, otherwise, line);
            }
            return expr;
        }
        finally { _depth--; }
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Next().Line;
            left = new BinaryExpr("or", left, ParseAnd(), line);
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Next().Line;
            left = new BinaryExpr("and", left, ParseNot(), line);
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            Enter(line);
            try { return new UnaryExpr("not", ParseNot(), line); }
            finally { _depth--; }
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            if (t.Kind == TokenKind.Operator && t.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                _pos++;
                rest.Add((t.Value, ParseMath1()));
            }
            else if (t.IsName("in"))
            {
                _pos++;
                rest.Add(("in", ParseMath1()));
            }
            else if (t.IsName("not") && Peek().IsName("in"))
            {
                _pos += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParseConcat(), op.Line);
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (Current.IsOperator("~"))
        {
            var op = Next();
            left = new BinaryExpr("~", left, ParseMath2(), op.Line);
        }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParsePow(), op.Line);
        }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            var op = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), op.Line);
        }
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        var t = Current;
        Expr node;
        if (t.Kind == TokenKind.Operator && t.Value is "-" or "+")
        {
            _pos++;
            Enter(t.Line);
            try { node = new UnaryExpr(t.Value, ParseUnary(withFilter: false), t.Line); }
            finally { _depth--; }
        }
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                _pos++;
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Line),
                    "false" or "False" => new LiteralExpr(false, t.Line),
                    "none" or "None" => new LiteralExpr(null, t.Line),
                    _ => new NameExpr(t.Value, t.Line),
                };
            case TokenKind.String:
                _pos++;
                // Adjacent string literals concatenate, as in Python.
                string s = (string)t.Literal!;
                while (Current.Kind == TokenKind.String) s += (string)Next().Literal!;
                return new LiteralExpr(s, t.Line);
            case TokenKind.Integer:
            case TokenKind.Float:
                _pos++;
                return new LiteralExpr(t.Literal, t.Line);
            case TokenKind.Operator when t.Value == "(":
                _pos++;
                if (Current.IsOperator(")"))
                {
                    _pos++;
                    return new ListExpr([], t.Line, IsTuple: true);
                }
                var inner = ParseTuple(withCondexpr: true);
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                _pos++;
                var items = new List<Expr>();
                while (!Current.IsOperator("]"))
                {
                    if (items.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",");
                        if (Current.IsOperator("]")) break;
                    }
                    items.Add(ParseExpression());
                }
                _pos++;
                return new ListExpr(items, t.Line);
            case TokenKind.Operator when t.Value == "{":
                _pos++;
                var pairs = new List<(Expr, Expr)>();
                while (!Current.IsOperator("}"))
                {
                    if (pairs.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",");
                        if (Current.IsOperator("}")) break;
                    }
                    var key = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    pairs.Add((key, ParseExpression()));
                }
                _pos++;
                return new DictExpr(pairs, t.Line);
            default:
                throw new TemplateSyntaxError($"unexpected {t.Describe()}", t.Line);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator("."))
            {
                _pos++;
                var attr = Next();
                if (attr.Kind == TokenKind.Name) node = new AttributeExpr(node, attr.Value, t.Line);
                else if (attr.Kind == TokenKind.Integer) node = new ItemExpr(node, new LiteralExpr(attr.Literal, attr.Line), t.Line);
                else throw new TemplateSyntaxError($"expected an attribute name after '.', got {attr.Describe()}", attr.Line);
            }
            else if (t.IsOperator("["))
            {
                _pos++;
                node = ParseSubscript(node, t.Line);
                Expect(TokenKind.Operator, "]");
            }
            else if (t.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node, int line)
    {
        Expr? start = null, stop = null, step = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":"))
            {
                if (Current.IsOperator(","))
                    throw new TemplateSyntaxError("tuple subscripts are outside the Jinja subset Afinado renders chat templates with", Current.Line);
                return new ItemExpr(node, start, line);
            }
        }
        _pos++; // first ':'
        if (!Current.IsOperator("]") && !Current.IsOperator(":")) stop = ParseExpression();
        if (Current.IsOperator(":"))
        {
            _pos++;
            if (!Current.IsOperator("]")) step = ParseExpression();
        }
        return new SliceExpr(node, start, stop, step, line);
    }

    private CallExpr ParseCall(Expr callee)
    {
        int line = Expect(TokenKind.Operator, "(").Line;
        var (args, kwargs) = ParseArguments();
        return new CallExpr(callee, args, kwargs, line);
    }

    /// <summary>Arguments after an opening parenthesis, through the closing one: positional, then <c>name=value</c>.</summary>
    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Current.IsOperator(")"))
        {
            if (args.Count + kwargs.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOperator(")")) break;
            }
            if (Current.IsOperator("*") || Current.IsOperator("**"))
                throw new TemplateSyntaxError("*args and **kwargs in calls are outside the Jinja subset Afinado renders chat templates with", Current.Line);
            if (Current.Kind == TokenKind.Name && Peek().IsOperator("="))
            {
                string name = Next().Value;
                _pos++;
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw new TemplateSyntaxError("positional argument after a keyword argument", Current.Line);
                args.Add(ParseExpression());
            }
        }
        _pos++;
        return (args, kwargs);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator("|"))
            {
                _pos++;
                string name = DottedName();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (Current.IsOperator("("))
                {
                    _pos++;
                    (args, kwargs) = ParseArguments();
                }
                node = new FilterExpr(node, name, args, kwargs, t.Line);
            }
            else if (t.IsName("is"))
            {
                _pos++;
                bool negated = false;
                if (Current.IsName("not"))
                {
                    _pos++;
                    negated = true;
                }
                string name = DottedName();
                var args = new List<Expr>();
                var next = Current;
                if (next.IsOperator("("))
                {
                    _pos++;
                    var (positional, kwargs) = ParseArguments();
                    if (kwargs.Count > 0) throw new TemplateSyntaxError("keyword arguments to tests are outside the Jinja subset Afinado renders chat templates with", next.Line);
                    args = positional;
                }
                else if ((next.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                          || next.IsOperator("[") || next.IsOperator("{"))
                         && !next.IsName("else") && !next.IsName("or") && !next.IsName("and"))
                {
                    // Jinja2's one-argument form: "x is divisibleby 3", "x is sameas false".
                    if (next.IsName("is")) throw new TemplateSyntaxError("you cannot chain multiple tests with is", next.Line);
                    args.Add(ParsePostfix(ParsePrimary()));
                }
                node = new TestExpr(node, name, args, negated, t.Line);
            }
            else if (t.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private string DottedName()
    {
        string name = Expect(TokenKind.Name).Value;
        while (Current.IsOperator(".") && Peek().Kind == TokenKind.Name)
        {
            _pos++;
            name += "." + Next().Value;
        }
        return name;
    }
}
