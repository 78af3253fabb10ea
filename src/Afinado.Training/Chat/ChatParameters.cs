namespace Afinado.Training.Chat;

/// <summary>The arguments of a chat template's rendering: the conversation's messages.</summary>
public static class ChatParameters
{
    public static readonly InputParameter Messages = new("messages");
}
