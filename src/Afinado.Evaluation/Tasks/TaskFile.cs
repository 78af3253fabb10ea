using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Evaluation.Tasks;

/// <summary>One user-declared task: a Fashion-MNIST class subset (classification) or a text file (language modelling).</summary>
public sealed record TaskSpec(string Name, TaskRole Role, string Kind, IReadOnlyList<int>? Classes = null, string? Text = null);

/// <summary>
/// Tasks declared in a JSON file (schema <c>afinado.tasks/1</c>):
/// <code>{"schema": "afinado.tasks/1", "tasks": [
///   {"name": "classes 5-9", "role": "target", "kind": "classification", "classes": [5, 6, 7, 8, 9]},
///   {"name": "classes 0-4", "role": "retained", "kind": "classification", "classes": [0, 1, 2, 3, 4]},
///   {"name": "computers", "role": "retained", "kind": "language_modelling", "text": "/usr/share/games/fortunes/computers"}]}</code>
/// Exactly one task is the target; names are unique; classes are 0–9 and a class belongs to at most one task.
/// </summary>
public static class TaskFile
{
    public const string SchemaId = "afinado.tasks/1";

    private sealed record Document(string? Schema, IReadOnlyList<TaskSpec>? Tasks);

    public static IReadOnlyList<TaskSpec> Read(string path)
    {
        if (!File.Exists(path)) throw new InputError(EvalParameters.Tasks, $"'{path}' does not exist", "Pass a JSON task file (schema afinado.tasks/1).");
        // Checked JSON: a lone surrogate, duplicate key or FIFO is an input error naming the file, not a crash or a hang.
        var doc = InputJson.Deserialize<Document>(path, InputKind.Tasks, EvalJson.Options);
        if (doc.Schema != SchemaId) throw new InputError($"{InputFile.Describe(path)}: schema", $"is '{TerminalText.Escape(doc.Schema)}', expected '{SchemaId}'", $"Add \"schema\": \"{SchemaId}\".");
        var tasks = doc.Tasks ?? [];
        Validate(path, tasks);
        return tasks;
    }

    public static void Validate(InputText where, IReadOnlyList<TaskSpec> tasks)
    {
        if (tasks.Count(t => t.Role == TaskRole.Target) != 1)
            throw new InputError($"{where}: tasks", $"declares {tasks.Count(t => t.Role == TaskRole.Target)} target tasks", "Declare exactly one task with \"role\": \"target\" (the others are retained).");
        if (tasks.All(t => t.Role != TaskRole.Retained))
            throw new InputError($"{where}: tasks", "declares no retained task", "Declare at least one task with \"role\": \"retained\": the tax is measured on it.");
        var seen = new HashSet<string>();
        var classOwner = new Dictionary<int, string>();
        for (int i = 0; i < tasks.Count; i++)
        {
            var t = tasks[i];
            var field = $"{where}: tasks[{i}]";
            if (string.IsNullOrWhiteSpace(t.Name) || !seen.Add(t.Name))
                throw new InputError($"{field}.name", $"'{t.Name}' is empty or repeated", "Give every task its own name.");
            switch (t.Kind)
            {
                case TaskInfo.Classification:
                    if (t.Classes is null || t.Classes.Count == 0)
                        throw new InputError($"{field}.classes", "is missing", "List the Fashion-MNIST classes (0–9) of this task.");
                    foreach (var c in t.Classes)
                    {
                        if (c is < 0 or > 9) throw new InputError($"{field}.classes", $"{c} is not a Fashion-MNIST class", "Use classes 0–9.");
                        if (!classOwner.TryAdd(c, t.Name)) throw new InputError($"{field}.classes", $"class {c} is also in task '{classOwner[c]}'", "Put each class in one task only.");
                    }
                    break;
                case TaskInfo.LanguageModelling:
                    if (t.Text is null || !(File.Exists(t.Text) || Directory.Exists(t.Text)))
                        throw new InputError($"{field}.text", $"'{t.Text}' does not exist", "Give the path of a text file or folder of them (fortune format: items separated by lines holding only %).");
                    break;
                default:
                    throw new InputError($"{field}.kind", $"'{t.Kind}' is not a task kind", $"Use \"{TaskInfo.Classification}\" or \"{TaskInfo.LanguageModelling}\".");
            }
        }
    }
}
