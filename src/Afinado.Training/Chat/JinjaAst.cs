namespace Afinado.Training.Chat;

// The tree the parser builds and the interpreter walks. Every node keeps its template line for error messages.

internal abstract record Node(int Line);

internal abstract record Stmt(int Line) : Node(Line);

internal sealed record TextStmt(string Text, int Line) : Stmt(Line);

internal sealed record OutputStmt(Expr Value, int Line) : Stmt(Line);

internal sealed record IfStmt(List<(Expr Test, List<Stmt> Body)> Branches, List<Stmt>? Else, int Line) : Stmt(Line);

internal sealed record ForStmt(Target Target, Expr Iterable, Expr? Filter, List<Stmt> Body, List<Stmt>? Else, int Line) : Stmt(Line);

internal sealed record SetStmt(Target Target, Expr Value, int Line) : Stmt(Line);

/// <summary><c>{% set x %}...{% endset %}</c>: the rendered body becomes the value.</summary>
internal sealed record SetBlockStmt(Target Target, List<Stmt> Body, int Line) : Stmt(Line);

internal sealed record BreakStmt(int Line) : Stmt(Line);

internal sealed record ContinueStmt(int Line) : Stmt(Line);

/// <summary>transformers' <c>{% generation %}</c> tag: marks assistant text for masks, renders its body unchanged.</summary>
internal sealed record GenerationStmt(List<Stmt> Body, int Line) : Stmt(Line);

/// <summary>An assignment target: a name, <c>ns.attr</c>, or names to unpack (<c>k, v</c>).</summary>
internal abstract record Target(int Line);

internal sealed record NameTarget(string Name, int Line) : Target(Line);

internal sealed record AttributeTarget(string Object, string Attribute, int Line) : Target(Line);

internal sealed record TupleTarget(List<Target> Items, int Line) : Target(Line);

internal abstract record Expr(int Line) : Node(Line);

internal sealed record LiteralExpr(object? Value, int Line) : Expr(Line);

internal sealed record NameExpr(string Name, int Line) : Expr(Line);

internal sealed record ListExpr(List<Expr> Items, int Line, bool IsTuple = false) : Expr(Line);

internal sealed record DictExpr(List<(Expr Key, Expr Value)> Items, int Line) : Expr(Line);

internal sealed record AttributeExpr(Expr Object, string Name, int Line) : Expr(Line);

internal sealed record ItemExpr(Expr Object, Expr Index, int Line) : Expr(Line);

internal sealed record SliceExpr(Expr Object, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);

internal sealed record CallExpr(Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);

internal sealed record FilterExpr(Expr Operand, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);

internal sealed record TestExpr(Expr Operand, string Name, List<Expr> Args, bool Negated, int Line) : Expr(Line);

internal sealed record UnaryExpr(string Op, Expr Operand, int Line) : Expr(Line);

internal sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line) : Expr(Line);

/// <summary>A comparison chain (<c>a &lt; b &lt;= c</c>, <c>x in xs</c>, <c>x not in xs</c>), each pair tested as in Python.</summary>
internal sealed record CompareExpr(Expr First, List<(string Op, Expr Right)> Rest, int Line) : Expr(Line);

internal sealed record CondExpr(Expr Test, Expr Then, Expr? Else, int Line) : Expr(Line);
