/*
 * Ejemplo de uso de VirtualAlloc() (course notes, Universidad de Oviedo, Arquitectura de
 * Computadores), the solution exactly as the notes write it: typographic quotes straightened,
 * and the two #include lines added.
 *
 * Enunciado: Hacer una llamada a la funcion VirtualAlloc() para reservar 8 paginas en el
 * espacio de direcciones de un proceso, a partir de la direccion 40000000, y de modo que las
 * paginas puedan ser leidas y escritas. Si la funcion falla, enviar un mensaje a pantalla
 * indicando el fallo y si acierta, enviar un mensaje indicando la direccion a partir de la
 * cual se ha realizado la reserva.
 *
 * Build and run on Linux (main() has no return type, as in the notes: C99 and later need
 * -Wno-implicit-int to accept it; C99 also makes main return 0 at its closing brace):
 *
 *     cargo build --release -p virtmem
 *     cc -std=gnu11 -Wno-implicit-int -Iinclude examples/c/ejercicio1.c \
 *        target/release/libvirtmem.a -lpthread -ldl -lm -o ejercicio1
 *     ./ejercicio1          # Dir. de RESERVA = 0x40000000
 */
#include <windows.h>
#include <stdio.h>

main()
{
    void *p;

    p = VirtualAlloc( (void *)0x40000000,
                      8*4096,
                      MEM_RESERVE,
                      PAGE_READWRITE );

    if (p == NULL)
        printf("Fallo en la RESERVA");
    else
        printf("Dir. de RESERVA = %p", p);
}
